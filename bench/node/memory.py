"""Memory of a Vite: its launcher's whole process group, summed from smaps_rollup; and a
bare `node` that imported what the launcher imports, for comparison. PSS splits shared
pages between their users, so `Pss_Anon` is the part that does not depend on how many other
`node` processes the machine runs."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from bench.harness.procfs import group_members, smaps_rollup
from tests.support.processes import Processes

RUNTIME_IMPORTS = (
    "await import('vite'); await import('@vitejs/plugin-react'); await import('@tailwindcss/vite');"
)


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


def group_memory(pgid: int) -> dict[str, int]:
    """smaps_rollup summed over a process group (the launcher and anything it started)."""
    total: dict[str, int] = {"processes": 0}
    for pid in group_members(pgid):
        m = smaps_rollup(pid)
        if not m:
            continue
        total["processes"] += 1
        for k in ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Private_Dirty"):
            total[k] = total.get(k, 0) + m.get(k, 0)
    return total


def kib_to_mib(m: dict[str, int]) -> dict[str, float]:
    return {k: (v if k == "processes" else mib(v)) for k, v in m.items()}


def spread(kibs: list[int]) -> dict[str, float]:
    if not kibs:
        return {}
    return {
        "mean": mib(statistics.fmean(kibs)),
        "min": mib(min(kibs)),
        "max": mib(max(kibs)),
    }


def bare_runtime_memory(procs: Processes, runtime: Path) -> dict[str, float]:
    """PSS of a node process that has imported what the launcher imports, doing nothing."""
    code = RUNTIME_IMPORTS + " process.stdout.write('ok\\n'); setTimeout(() => {}, 20000);"
    proc = procs.start(["node", "--input-type=module", "-e", code], "bare-runtime", cwd=runtime)
    try:
        deadline = time.monotonic() + 20  # the child ends itself after its 20 s timer
        ready = False
        while not ready and proc.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
            ready = "ok" in proc.output().splitlines()
        time.sleep(1)
        m = smaps_rollup(proc.pid) if ready else {}
        return {k: mib(m.get(k, 0)) for k in ("Rss", "Pss", "Pss_Anon", "Pss_File")}
    finally:
        procs.stop(proc)
