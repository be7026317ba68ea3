"""vae_core.cpu: the cores other processes keep busy, and the threads a run takes from what is left."""

import multiprocessing as mp
import time

from vae_core.cpu import LoadMeter, cores


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def test_a_process_keeping_a_core_busy_is_counted_and_leaves_the_run_one_core_fewer():
    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,))
    spinner.start()
    try:
        time.sleep(0.5)  # the spinner up and running
        meter = LoadMeter()
        time.sleep(1.0)
        load = meter.others()
        time.sleep(1.0)
        threads = meter.threads()
    finally:
        stop.set()
        spinner.join()
    assert load is not None and load >= 0.7  # a whole core, give or take the scheduler
    assert 1 <= threads <= max(1, cores() - 1)

