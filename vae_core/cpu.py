"""How many torch threads a run should use, from what the machine is doing now.

    from vae_core.cpu import LoadMeter
    meter = LoadMeter()                  # starts measuring
    ...                                  # the process's start: imports, the data
    torch.set_num_threads(meter.threads())

Measured by bench/threads.py on 2 cores: 2 threads are 1.55x faster than 1 on a
quiet machine but 2.3x slower while another process keeps a core busy (the
app's server, a browser, a second run). So a run counts the cores the *other*
processes kept busy since the last reading (the whole machine's busy time from
/proc/stat, less this process's own CPU time) and takes the cores they left.
Where /proc/stat cannot be read, it keeps all cores but one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STAT = Path("/proc/stat")
# Other processes take a core from a run once they keep this share of one busy: a quiet server at
# a few percent leaves room for a second thread; a browser redrawing a chart, or a spinning process,
# does not (a thread that waits for a busy core stalls the other at every step).
BUSY_CORE = 0.25


def cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot, or None where /proc/stat is unreadable."""
    try:
        fields = STAT.read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(v) for v in fields]
    except (OSError, ValueError, IndexError):
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class LoadMeter:
    """Cores kept busy by other processes between two readings."""

    def __init__(self) -> None:
        self.wall, self.busy, self.own = time.monotonic(), _busy_seconds(), time.process_time()

    def others(self) -> float | None:
        """Cores the other processes kept busy since the last reading (0 to cores()); starts a new reading."""
        wall, busy, own = time.monotonic(), _busy_seconds(), time.process_time()
        elapsed = wall - self.wall
        load = None
        if busy is not None and self.busy is not None and elapsed > 0:
            load = max(0.0, ((busy - self.busy) - (own - self.own)) / elapsed)
        self.wall, self.busy, self.own = wall, busy, own
        return load

    def threads(self) -> int:
        """Threads for the next stretch of work: the cores others left free, at least 1."""
        load, n = self.others(), cores()
        if load is None:
            return max(1, n - 1)
        taken = int(load + 1.0 - BUSY_CORE)  # cores the others keep busy, a share of BUSY_CORE or more counted whole
        return max(1, n - taken)
