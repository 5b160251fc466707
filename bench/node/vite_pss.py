"""Vite memory (part of phase `ready`): one Vite at ready, after its page and after a 5 s
settle, next to a bare `node` with the launcher's imports; then N running Vites, each after
its page, and the node process itself. A Vite is its launcher's whole process group."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.harness.procfs import smaps_rollup
from bench.harness.run import progress
from bench.node.api import Api
from bench.node.memory import bare_runtime_memory, group_memory, kib_to_mib, mib, spread
from bench.node.nodes import Node, Nodes, vite_pids
from bench.node.page import PageLoader


def vite_memory(
    nodes: Nodes,
    node: Node,
    api: Api,
    loader: PageLoader,
    args: argparse.Namespace,
    files: dict[str, str],
    runtime: Path,
) -> dict[str, Any]:
    progress("memory: one Vite at ready, after its page, after 5 s")
    sid, _, _ = api.create(files, wait=True)
    pid = vite_pids(node.data_dir)[sid]
    at_ready = group_memory(pid)
    load = loader.load(sid)
    after_load = group_memory(pid)
    time.sleep(5)
    settled = group_memory(pid)
    one = {
        "at_ready": kib_to_mib(at_ready),
        "after_page": kib_to_mib(after_load),
        "settled_5s": kib_to_mib(settled),
        "page_requests": load["requests"],
    }
    one["bare_runtime"] = bare_runtime_memory(nodes.procs, runtime)
    api.delete(sid)
    time.sleep(0.5)

    progress(f"memory: {args.vites} running Vites, each after its page")
    sids = loader.create_loaded(api, files, args.vites, 90)
    time.sleep(5)
    pids = vite_pids(node.data_dir)
    per = [group_memory(pids[s]) for s in sids if s in pids]
    node_mem = smaps_rollup(node.pid)
    many = {
        "vites": len(per),
        "per_vite_pss_mib": spread([m.get("Pss", 0) for m in per]),
        "per_vite_rss_mib": spread([m.get("Rss", 0) for m in per]),
        "per_vite_pss_anon_mib": spread([m.get("Pss_Anon", 0) for m in per]),
        "total_pss_mib": mib(sum(m.get("Pss", 0) for m in per)),
        "total_rss_mib": mib(sum(m.get("Rss", 0) for m in per)),
        "node_process_pss_mib": mib(node_mem.get("Pss", 0)),
        "node_process_rss_mib": mib(node_mem.get("Rss", 0)),
    }
    for sid in sids:
        api.delete(sid)
    return {"one_vite": one, "ten_vites": many}
