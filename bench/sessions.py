"""Five real browser sessions start heavy work; does a sixth tab still open a page quickly?

    .venv/bin/python -m bench.sessions                      # 5 Latent maps at 5 perplexities (T-SNE)
    .venv/bin/python -m bench.sessions --work estimates     # 5 Evaluates, N = 10,000 and K = 5,000
    .venv/bin/python -m bench.sessions --far-browsers       # the five busy browsers yield to the server

The real server (`streamlit run`, bench/serve.py) serves a copy of the shipped
tutorial run in a temporary checkpoints folder, so nothing is written into the
project. Chromium opens Samples in a fresh tab (a new session) several times at
rest: the seconds from the request to its title and its image drawn. Then five
sessions each start heavy work in the background pool: the Latent map at
perplexities 10, 20, 40, 50, 60 (no map is kept for them), or Evaluate's
largest estimate with seeds 1 to 5 (each confirmed). Once all five show their
progress or queue place, Samples is opened again the same number of times.
The server's peak resident memory is its VmHWM (/proc/<pid>/status). Then the
five tabs are closed; after the abandon time (VAE_TASK_ABANDON, set here) and a
margin, the server's CPU time over a few seconds says whether anything still runs.

All six tabs share this machine's two cores with the server unless
--far-browsers runs the five busy sessions' Chromium at nice 19, standing in for
a class whose browsers run on their own machines.

Goals: Samples under load within 2x its time at rest, peak memory under 2 GiB,
no CPU used once the sessions are closed and the abandon time has passed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench import serve

ROOT = Path(__file__).resolve().parent.parent
PERPLEXITIES = (10, 20, 40, 50, 60)  # none of them the default 30, whose map might be kept
ESTIMATE = "n=10000&k=5000"  # Evaluate's largest estimate
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run",
                 # every tab polls as a visible one would: a throttled tab would stop watching its task
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]
TIMEOUT_MS = 600_000


def open_samples(browser, base: str) -> float:
    """Seconds from a fresh tab's request of Samples to its title and its image drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    start = time.perf_counter()
    page.goto(f"{base}/samples", wait_until="commit")
    page.wait_for_selector("h1:has-text('Samples from the prior')")
    page.wait_for_selector("[data-testid='stImage'] img")
    seconds = time.perf_counter() - start
    context.close()
    return seconds


def start_work(browser, base: str, work: str, i: int):
    """A session (its own browser context) that starts heavy work number `i`; returns (context, page)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if work == "maps":
        page.goto(f"{base}/latent_map?perplexity={PERPLEXITIES[i]}", wait_until="commit")
    else:
        page.goto(f"{base}/evaluate?{ESTIMATE}&seed={i + 1}", wait_until="commit")
        page.get_by_role("button", name="Estimate log p(x) with K = 5,000 on 10,000 images").click()
        confirm = page.get_by_role("button", name="Start anyway")
        confirm.or_(page.get_by_test_id("stProgress")).first.wait_for()
        if confirm.count():
            confirm.click()
    page.get_by_test_id("stProgress").first.wait_for()
    print(f"  session {i + 1} started: {progress_text(page)}", flush=True)
    return context, page


def progress_text(page) -> str:
    """What a session's progress bar says now (its queue place, or its progress)."""
    bar = page.get_by_test_id("stProgress")
    return bar.first.inner_text().strip().replace("\n", " ") if bar.count() else "(no progress bar: finished?)"


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def running_threads(pid: int) -> list[str]:
    """Names and nice values of the process's threads that are running or runnable now."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        fields = rest.split()
        if fields[0] == "R":
            found.append(f"{name} (nice {fields[16]})")
    return found


def children(pid: int) -> list[int]:
    """The background computations the server runs now: its child processes, less multiprocessing's tracker."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"resource_tracker" not in command:
            found.append(int(stat.parent.name))
    return found


def rss_mib(pid: int) -> float:
    """Resident memory now (VmRSS), MiB; 0 for a process that has ended."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class MemorySampler(threading.Thread):
    """The peak of the server's memory with its children's, sampled twice a second (a child's own peak
    is lost when it exits, so VmHWM alone would miss the computations)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, rss_mib(self.pid) + sum(rss_mib(c) for c in children(self.pid)))


def niced_chromium(folder: Path) -> str:
    """A Chromium launcher at nice 19 (its renderers inherit it): the five busy sessions' browsers, which in a
    class run on the students' own machines, not on the server's cores."""
    launcher = folder / "chromium-nice19"
    launcher.write_text(f"#!/bin/sh\nexec nice -n 19 {shutil.which('chromium')} \"$@\"\n")
    launcher.chmod(0o755)
    return str(launcher)


def measure(work: str, port: int, opens: int, abandon: float, margin: float, far: bool) -> dict:
    """Run the scenario once; the figures, in seconds and MiB."""
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="vae-sessions-"))
    shutil.copytree(ROOT / "checkpoints" / "tutorial", folder / "tutorial")
    for kept in (folder / "tutorial" / "cache").glob("tsne-*"):
        kept.unlink()  # every map is computed here
    server = serve.start(port, {"VAE_CHECKPOINTS": str(folder), "VAE_TASK_ABANDON": str(abandon)})
    figures: dict = {}
    try:
        serve.wait_until_healthy(port)
        base = f"http://localhost:{port}"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            sampler = MemorySampler(server.pid)
            sampler.start()
            open_samples(browser, base)  # warm: the model, the first script run
            figures["rest"] = [open_samples(browser, base) for _ in range(opens)]
            print(f"Samples at rest: {', '.join(f'{s:.2f}' for s in figures['rest'])} s", flush=True)
            begin = time.perf_counter()
            busy = (p.chromium.launch(executable_path=niced_chromium(folder), args=CHROMIUM_ARGS) if far
                    else browser)
            sessions = [start_work(busy, base, work, i) for i in range(5)]
            figures["started"] = time.perf_counter() - begin
            figures["load"] = [open_samples(browser, base) for _ in range(opens)]
            print(f"Samples under load: {', '.join(f'{s:.2f}' for s in figures['load'])} s", flush=True)
            figures["queue_after"] = [progress_text(page) for _, page in sessions]
            figures["busy_threads"] = running_threads(server.pid)  # page threads; the computations run in children
            for context, _ in sessions:
                context.close()
            closed = time.perf_counter()
            time.sleep(abandon + margin)
            before, start = cpu_seconds(server.pid), time.perf_counter()
            time.sleep(5)
            figures["idle_cpu"] = (cpu_seconds(server.pid) - before) / (time.perf_counter() - start)
            figures["after_close"] = time.perf_counter() - closed
            figures["running"] = running_threads(server.pid)
            figures["children"] = len(children(server.pid))
            figures["peak_mib"] = peak_rss_mib(server.pid)
            sampler.stop.set()
            figures["peak_all_mib"] = sampler.peak
            if busy is not browser:
                busy.close()
            browser.close()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", choices=("maps", "estimates"), default="maps")
    parser.add_argument("--port", type=int, default=8611)
    parser.add_argument("--opens", type=int, default=3, help="Samples opened at rest, and again under load")
    parser.add_argument("--abandon", type=float, default=30.0, help="the server's VAE_TASK_ABANDON, seconds")
    parser.add_argument("--far-browsers", action="store_true",
                        help="the five busy sessions' Chromium at nice 19, as if their browsers ran on other machines "
                             "(by default all six tabs share this machine's cores with the server)")
    parser.add_argument("--margin", type=float, default=20.0,
                        help="seconds allowed past the abandon time for a worker to reach its next check")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; work: 5 sessions of {args.work}; the server's VAE_TASK_ABANDON {args.abandon:g} s",
          flush=True)
    f = measure(args.work, args.port, args.opens, args.abandon, args.margin, args.far_browsers)
    rest, load = statistics.median(f["rest"]), statistics.median(f["load"])
    rows = [
        ("Samples in a 6th tab, median s", f"{rest:.2f} at rest", f"{load:.2f} under load",
         f"{load / rest:.2f}x (goal 2x)"),
        ("Samples in a 6th tab, worst s", f"{max(f['rest']):.2f}", f"{max(f['load']):.2f}",
         f"{max(f['load']) / max(f['rest']):.2f}x"),
        ("server peak memory (VmHWM)", "", f"{f['peak_mib']:.0f} MiB", f"{f['peak_mib'] / 2048:.2f}x the 2 GiB goal"),
        ("server and its computations, peak (sampled)", "", f"{f['peak_all_mib']:.0f} MiB",
         f"{f['peak_all_mib'] / 2048:.2f}x the 2 GiB goal"),
        (f"server CPU {f['after_close']:.0f} s after the tabs closed", "", f"{f['idle_cpu']:.1%} of a core",
         f"running threads: {', '.join(f['running']) or 'none'}; computations left: {f['children']}"),
    ]
    print(f"five sessions started their work in {f['started']:.1f} s; when Samples had been measured they said:")
    for text in f["queue_after"]:
        print(f"  {text}")
    print(f"the server's running threads then: {', '.join(f['busy_threads']) or 'none'}")
    print(f"| {'measure':42s} | {'at rest':12s} | {'under load':14s} | ratio |")
    print(f"|{'-' * 44}|{'-' * 14}|{'-' * 16}|-------|")
    for row in rows:
        print(f"| {row[0]:42s} | {row[1]:12s} | {row[2]:14s} | {row[3]} |")


if __name__ == "__main__":
    main()
