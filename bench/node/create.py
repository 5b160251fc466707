"""Phase `create`: create -> 201 (no wait). A burst of back-to-back creates, each also
starting a Vite in the background (they compete for the CPU), deleted after; then paced
creates on a quiet node (pause, delete, next). DELETE latency of both."""

from __future__ import annotations

import argparse
import time
from contextlib import closing
from typing import Any

from bench.harness.run import bounded, progress
from bench.harness.stats import summary_ms
from bench.node.api import Api
from bench.node.cpu import CpuMeter
from bench.node.nodes import Node, Nodes, vite_pids


def phase_create(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """1. create -> 201: burst (Vites boot meanwhile), then paced on a quiet node."""
    flags = ("--max-running", "12", "--max-sessions", "1000")
    with nodes.running("create", *flags) as node, closing(Api(node.port)) as api:
        for _ in range(3):  # warm the node's code paths (imports, first fsyncs)
            api.delete(api.create(files)[0])
        return {"burst": _burst(node, api, args, files), "paced": _paced(node, api, args, files)}


def _burst(node: Node, api: Api, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    progress(f"burst: {args.creates} creates back to back, each starting a Vite")
    cpu = CpuMeter(node)
    times, sids = [], []
    t_start = time.perf_counter()
    for _ in bounded(args.creates, 60):
        sid, _, dt = api.create(files)
        times.append(dt)
        sids.append(sid)
    wall = time.perf_counter() - t_start
    busy = cpu.report()
    running = len(vite_pids(node.data_dir))
    load = api.load()
    dels = [api.delete(sid) for sid in sids]
    return {
        "create_ms": summary_ms(times),
        "creates_per_s": round(len(times) / wall, 1),
        "cpu": busy,
        "vites_alive_after": running,
        "node_load_after": load,
        "delete_ms": summary_ms(dels),
    }


def _paced(node: Node, api: Api, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    progress(f"paced: {args.paced} creates, {args.pause}s pause, delete before the next")
    cpu = CpuMeter(node)
    times, dels = [], []
    for _ in bounded(args.paced, 90):
        sid, _, dt = api.create(files)
        times.append(dt)
        time.sleep(args.pause)
        dels.append(api.delete(sid))
        time.sleep(0.1)
    return {
        "create_ms": summary_ms(times),
        "pause_s": args.pause,
        "cpu": cpu.report(),
        "delete_ms": summary_ms(dels),
    }
