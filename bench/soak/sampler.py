"""FDs and RSS of every process of the platform, sampled over time from /proc: each router,
each node, and each session's dev server (its launcher's whole process group, with what
bubblewrap starts below it, summed). FDs are counted as all, sockets, sockets whose peer
has closed (`orphans`; `stale_orphans`: those still held STALE_S after they were first
seen so), and the rest (`files`: files, pipes, epoll, inotify, ...). The
soak's long-lived sessions are tracked by name; the churned sessions' Vites are only
counted (they come and go by design).

Never: signal anything, or fail a sample because a process exited between two reads (a
process that went is simply absent from that sample).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from bench.harness.procfs import group_members, loadavg, vm_rss_kib
from bench.node.nodes import vite_pids

# An orphaned socket still held this long after it was first seen orphaned is forgotten, not
# in flight: a healthy process closes its end within seconds (a tunnel as soon as its other
# side closes, the node's pool within ~9 s: housekeeping every 5 s, idle connections 4 s).
STALE_S = 15.0


def peer_gone() -> set[int]:
    """Inodes of the sockets (in our network namespace) whose peer has closed: TCP in
    CLOSE_WAIT, and connected unix stream sockets whose peer socket is gone. A process
    that holds such a socket for long has forgotten it: that is what a socket leak
    looks like, whatever the traffic in flight."""
    gone: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                f = line.split()
                if len(f) > 9 and f[3] == "08":  # CLOSE_WAIT
                    gone.add(int(f[9]))
    try:  # only sock_diag knows a unix socket's peer
        out = subprocess.run(["ss", "-xaH"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return gone
    for line in out.splitlines():
        f = line.split()
        if len(f) == 8 and f[0] == "u_str" and f[1] == "ESTAB" and f[7] == "0":
            gone.add(int(f[5]))
    return gone


def fd_counts(pid: int, gone: Set[int], stale: Set[int] = frozenset()) -> dict[str, int]:
    """Open FDs of one process: all, the sockets, the sockets whose peer has closed
    (`orphans`: inodes in `gone`) and those of them in `stale`."""
    fds = sockets = orphans = stale_orphans = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        fds += 1
        with contextlib.suppress(OSError):  # closed since the listing
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                sockets += 1
                inode = int(link[8:-1])
                orphans += inode in gone
                stale_orphans += inode in stale
    return {"fds": fds, "sockets": sockets, "orphans": orphans, "stale_orphans": stale_orphans}


def measure(pids: list[int], gone: Set[int], stale: Set[int]) -> dict[str, int] | None:
    """{fds, sockets, orphans, stale_orphans, files, rss_kib, procs} summed over `pids`
    (`files`: every FD that is not a socket); None when none of them could be read."""
    total = dict.fromkeys(("fds", "sockets", "orphans", "stale_orphans", "rss_kib", "procs"), 0)
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            counts, rss = fd_counts(pid, gone, stale), vm_rss_kib(pid)
            for key, value in [*counts.items(), ("rss_kib", rss), ("procs", 1)]:
                total[key] += value
    if not total["procs"]:
        return None
    return {**total, "files": total["fds"] - total["sockets"]}


@dataclass
class Sampler:
    """`fixed`: name -> pid (routers, nodes); `data_dirs`: node name -> its data dir;
    `sessions`: session id -> the name its dev server is reported under."""

    fixed: Mapping[str, int]
    data_dirs: Mapping[str, Path]
    sessions: dict[str, str] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # name -> router | node | vite
    gone_since: dict[int, float] = field(default_factory=dict)  # orphan inode -> first seen

    def __post_init__(self) -> None:
        for name in self.fixed:
            self.kinds[name] = "router" if name.startswith("router") else "node"

    def vites(self) -> dict[str, int]:
        """session id -> launcher pid, over every node's data dir."""
        found: dict[str, int] = {}
        for data in self.data_dirs.values():
            found.update(vite_pids(data))
        return found

    def sample(self, at: float) -> dict[str, Any]:
        procs: dict[str, Any] = {}
        gone = peer_gone()
        self.gone_since = {i: self.gone_since.get(i, at) for i in gone}
        stale = {i for i, since in self.gone_since.items() if at - since >= STALE_S}
        for name, pid in self.fixed.items():
            if (m := measure([pid], gone, stale)) is not None:
                procs[name] = m
        others = 0
        for sid, leader in self.vites().items():
            known = self.sessions.get(sid)
            if known is None:
                others += 1
                continue
            try:
                members = group_members(os.getpgid(leader))
            except OSError:
                continue
            if (m := measure(members, gone, stale)) is not None:
                procs[known] = {**m, "leader": leader}
                self.kinds[known] = "vite"
        row = {"t": round(at, 2), "procs": procs, "other_vites": others, "load1": loadavg()[0]}
        self.samples.append(row)
        return row


async def sample_loop(
    sampler: Sampler, started: float, until: float, every: float, max_samples: int
) -> None:
    """A sample every `every` s (in a thread: /proc and pgrep block) until `until` (trio
    time) or `max_samples`; the last one as close to `until` as the period allows."""
    for i in range(max_samples):
        due = started + i * every
        if due > until:
            return
        await trio.sleep_until(due)
        await trio.to_thread.run_sync(sampler.sample, trio.current_time() - started)
