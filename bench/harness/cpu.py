"""CPU accounting from /proc: a process's ticks, each core's and the machine's busy time.

A benchmark reads these before and after a measured run; the difference, divided by the
requests served, is CPU per request, and what no process under test explains is someone
else's load (printed as NOISY or `foreign %`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from bench.harness.procfs import stat_fields

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime, stime) of one process, in clock ticks."""
    f = stat_fields(pid)
    return int(f[11]), int(f[12])


def proc_ticks(pid: int, children: bool = False) -> int:
    """utime+stime (plus cutime+cstime: reaped children) of one process; 0 once it is gone."""
    try:
        f = stat_fields(pid)
    except OSError:
        return 0
    ticks = int(f[11]) + int(f[12])  # utime stime (fields 14, 15)
    return ticks + (int(f[13]) + int(f[14]) if children else 0)


def core_times() -> dict[str, tuple[int, int]]:
    """Per core: (busy, total) jiffies from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        if re.match(r"cpu\d+ ", line):
            name, *vals = line.split()
            nums = [int(v) for v in vals[:8]]
            idle = nums[3] + nums[4]
            out[name] = (sum(nums) - idle, sum(nums))
    return out


def machine_times() -> tuple[int, int]:
    """All cores together: (busy, total) jiffies."""
    vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = vals[3] + vals[4]
    return sum(vals) - idle, sum(vals)


def core_busy(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]
) -> dict[str, float]:
    """Per core: % busy between two `core_times()`."""
    busy = {}
    for name, (b1, t1) in after.items():
        b0, t0 = before.get(name, (0, 0))
        busy[name] = round(100.0 * (b1 - b0) / max(t1 - t0, 1), 1)
    return busy
