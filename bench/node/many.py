"""Phase `many`: what a registered session costs. Back-to-back creates on a node with
`--max-running 2` (the older Vites are stopped as LRU): node RSS growth per session, disk
per session, create latency of the first vs the last ones, GET/list latency with all of
them held, and the restart -> /healthz time with them on disk."""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.harness.procfs import vm_rss_kib
from bench.harness.run import bounded, progress
from bench.harness.stats import summary_ms
from bench.node.api import Api
from bench.node.cpu import CpuMeter
from bench.node.memory import mib
from bench.node.nodes import Node, Nodes, vite_pids


def disk_usage(path: Path) -> tuple[int, int]:
    """(allocated bytes, apparent bytes) under path, symlinks not followed."""
    alloc = apparent = 0
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                alloc += st.st_blocks * 512
                apparent += st.st_size
    with contextlib.suppress(OSError):
        st = os.lstat(path)
        alloc += st.st_blocks * 512
        apparent += st.st_size
    return alloc, apparent


def phase_many(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """5. many registered sessions on a node with --max-running 2."""
    flags = ("--max-running", "2", "--max-sessions", "1000")
    with nodes.running("many", *flags) as node, closing(Api(node.port)) as api:
        out = _registered(node, api, args, files)
        progress("many: restart the node on the same data dir")
    with (
        nodes.running("many", *flags, data_dir=node.data_dir) as node2,
        closing(Api(node2.port)) as api2,
    ):
        out["restart_to_healthy_s"] = round(node2.healthy_s, 2)
        _, listing, _ = api2.request("GET", "/kontext/preview")
        out["sessions_after_restart"] = len((listing or {}).get("sessions", []))
        out["node_rss_after_restart_mib"] = mib(vm_rss_kib(node2.pid))
    return out


def _registered(
    node: Node, api: Api, args: argparse.Namespace, files: dict[str, str]
) -> dict[str, Any]:
    rss_empty = vm_rss_kib(node.pid)
    n = args.sessions
    warm = min(20, n // 4)
    progress(f"many: {n} creates with --max-running 2 (LRU stops the older Vites)")
    times, sids = [], []
    rss_warm = rss_empty
    cpu = CpuMeter(node)
    t_start = time.perf_counter()
    for i in bounded(n, 120):
        if i == warm:
            rss_warm = vm_rss_kib(node.pid)
        sid, _, dt = api.create(files)
        times.append(dt)
        sids.append(sid)
    wall = time.perf_counter() - t_start
    cpu_report = cpu.report()
    # let the last Vites come up and the node settle
    for sid in sids[-2:]:
        api.wait_status(sid, {"ready", "idle", "failed"}, 30)
    time.sleep(1)
    rss_full = vm_rss_kib(node.pid)
    per_session = (rss_full - rss_warm) / max(1, len(sids) - warm)
    k = min(50, len(times) // 2)
    _, listing, t_list = api.request("GET", "/kontext/preview")
    t_get = [api.request("GET", f"/kontext/preview/{s}")[2] for s in sids[:50]]
    statuses: dict[str, int] = {}
    for s in (listing or {}).get("sessions", []):
        statuses[s["status"]] = statuses.get(s["status"], 0) + 1
    ws = [disk_usage(node.data_dir / "sessions" / s) for s in sids]
    vc = [disk_usage(node.data_dir / "vite-cache" / s) for s in sids]
    vc_used = [
        a
        for (a, _), s in zip(vc, sids, strict=True)
        if (node.data_dir / "vite-cache" / s / "vite" / "deps").is_dir()
    ]
    return {
        "sessions": len(sids),
        "create_ms": summary_ms(times),
        "create_first_k_ms": summary_ms(times[:k]),
        "create_last_k_ms": summary_ms(times[-k:]),
        "k": k,
        "creates_per_s": round(len(times) / wall, 1),
        "cpu": cpu_report,
        "node_rss_mib": {
            "empty": mib(rss_empty),
            f"after_{warm}": mib(rss_warm),
            "after_all": mib(rss_full),
        },
        "node_rss_kib_per_session": round(per_session, 1),
        "statuses": statuses,
        "vites_alive": len(vite_pids(node.data_dir)),
        "node_load": api.load(),
        "disk_session_dir_kib": round(statistics.fmean(a for a, _ in ws) / 1024, 1),
        "disk_session_dir_apparent_kib": round(statistics.fmean(b for _, b in ws) / 1024, 1),
        "disk_vite_cache_kib_mean_all": round(statistics.fmean(a for a, _ in vc) / 1024, 1),
        "disk_vite_cache_kib_mean_when_used": (
            round(statistics.fmean(vc_used) / 1024, 1) if vc_used else 0
        ),
        "vite_cache_dirs_used": len(vc_used),
        "list_all_ms": round(t_list * 1000, 2),
        "get_one_ms": summary_ms(t_get),
    }
