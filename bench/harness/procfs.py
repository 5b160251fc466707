"""Facts about processes and the machine from /proc: parents, process groups, command
lines, memory (smaps_rollup, VmRSS), load average, the file system under a path.

Never: write to /proc or signal anything; readers return empty values for a process that
has gone (they race with exits by design).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, ...] (field 3 onwards)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2 :].split()


def _pids_where(index: int, value: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat_fields(int(entry))[index]) == value:
                    found.append(int(entry))
    return found


def children_of(pid: int) -> list[int]:
    return _pids_where(1, pid)


def group_members(pgid: int) -> list[int]:
    """The process group, and every descendant of its members: a sandboxed dev server runs
    in a session of its own (bubblewrap's --new-session), below the group's bwrap."""
    parents: dict[int, int] = {}
    members: set[int] = set()
    for entry in os.listdir("/proc"):  # one pass: each process's parent and group
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat_fields(int(entry))
                parents[int(entry)] = int(fields[1])
                if int(fields[2]) == pgid:
                    members.add(int(entry))
    grew = True
    while grew:
        found = {pid for pid, ppid in parents.items() if ppid in members} - members
        members |= found
        grew = bool(found)
    return sorted(members)


def read_cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def smaps_rollup(pid: int) -> dict[str, int]:
    """Rss, Pss, Pss_Anon, Pss_File, ... in KiB (empty if the process is gone)."""
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return out
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key.strip()] = int(parts[0])
    return out


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def fs_type(path: Path) -> str:
    """The file system type of the longest mount point above `path`."""
    best, kind = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mnt, typ, *_ = line.split()
            if str(path).startswith(mnt) and len(mnt) > len(best):
                best, kind = mnt, typ
    return kind
