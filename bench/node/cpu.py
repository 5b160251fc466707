"""Who used the CPU during a phase: the whole machine, this benchmark's node (with the
Vites it reaped) and its live Vites, and the rest (`foreign %`)."""

from __future__ import annotations

import os
import time

from bench.harness.cpu import machine_times, proc_ticks
from bench.harness.procfs import group_members
from bench.node.nodes import Node, vite_pids


class CpuMeter:
    """Between creation and `report()`: how busy the machine was, and how much of that was
    this benchmark (itself, the node, the Vites it reaped and those still running).

    `foreign_pct` is what the rest of the machine used (other tests, builds...): when it
    is high, every latency here is inflated, so it is printed next to the numbers.
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.t0 = time.monotonic()
        self.sys0 = machine_times()
        self.ours0 = self._ours()

    def _ours(self) -> dict[int, int]:
        ticks = {0: proc_ticks(self.node.pid, children=True)}
        for pgid in vite_pids(self.node.data_dir).values():
            for pid in group_members(pgid):
                ticks[pid] = proc_ticks(pid)
        return ticks

    def report(self) -> dict[str, float]:
        busy, total = machine_times()
        ours1 = self._ours()
        bench = os.times()
        ours = sum(v - self.ours0.get(k, 0) for k, v in ours1.items() if k != 0)
        ours += ours1[0] - self.ours0[0]
        all_ticks = max(1, total - self.sys0[1])
        busy_pct = 100.0 * (busy - self.sys0[0]) / all_ticks
        ours_pct = 100.0 * ours / all_ticks
        return {
            "seconds": round(time.monotonic() - self.t0, 1),
            "machine_busy_pct": round(busy_pct, 1),
            "ours_pct": round(ours_pct, 1),
            "foreign_pct": round(max(0.0, busy_pct - ours_pct), 1),
            "bench_client_cpu_s": round(bench.user + bench.system, 1),
        }
