"""vae_core.cpu: the cores other processes keep busy, and the threads a run takes from what is left.

No test here sleeps and hopes: the arithmetic is checked on a stat file that
says exactly how busy the machine was, and the real /proc/stat against the CPU
time a spinning process reports for itself, whatever the machine's speed.
"""

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from vae_core import cpu
from vae_core.cpu import LoadMeter, cores

TICK = os.sysconf("SC_CLK_TCK")  # /proc/stat counts in ticks of 1/TICK s


def _write_stat(path: Path, busy_s: float) -> None:
    """A /proc/stat whose machine has been busy `busy_s` CPU seconds (all of it 'user'), idle 1,000 s."""
    path.write_text(f"cpu  {round(busy_s * TICK)} 0 0 {1000 * TICK} 0 0 0 0 0 0\ncpu0 0 0 0 0\n")


@pytest.mark.parametrize("others_busy, threads", [(0.0, cores()), (0.75, cores() - 1), (1.75, cores() - 2)])
def test_the_run_takes_the_cores_other_processes_left_counting_a_share_of_a_core_as_whole(
        tmp_path, monkeypatch, others_busy, threads):
    stat = tmp_path / "stat"
    monkeypatch.setattr(cpu, "STAT", stat)
    _write_stat(stat, 100.0)
    meter = LoadMeter()
    while time.monotonic() - meter.wall < 0.5:  # an interval long enough for a tick's rounding not to count
        pass
    elapsed, own = time.monotonic() - meter.wall, time.process_time() - meter.own
    _write_stat(stat, 100.0 + own + others_busy * elapsed)  # this process's time, and the others' share
    assert meter.threads() == max(1, threads)


def test_an_unreadable_stat_leaves_all_cores_but_one(tmp_path, monkeypatch):
    monkeypatch.setattr(cpu, "STAT", tmp_path / "missing")
    assert LoadMeter().threads() == max(1, cores() - 1)


def _spin(started, stop) -> None:
    started.set()
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid`, from /proc/<pid>/stat (fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def test_the_cpu_time_of_a_spinning_process_is_counted_as_others_load():
    started, stop = mp.Event(), mp.Event()
    spinner = mp.Process(target=_spin, args=(started, stop))
    spinner.start()
    try:
        assert started.wait(60)
        meter, before = LoadMeter(), _cpu_seconds(spinner.pid)
        while _cpu_seconds(spinner.pid) - before < 0.5:  # half a CPU second spun, however long that takes
            time.sleep(0.01)
        spun, wall0 = _cpu_seconds(spinner.pid) - before, meter.wall
        load = meter.others()
        elapsed = meter.wall - wall0
    finally:
        stop.set()
        spinner.join()
    assert load is not None
    assert load * elapsed >= spun - 2 / TICK  # the spinner's seconds are among the others' (give a tick each end)
