"""Phase `wake`: wake -> first byte on a node that stops Vites after 1 s idle. Sessions are
created and loaded; once one is `idle`, GET /preview/{id}/ is timed to its first response
byte (raw socket), then the page is loaded again; the next sample waits until it is idle."""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import closing
from typing import Any

from bench.harness.run import progress
from bench.harness.stats import summary_ms
from bench.node.api import Api, first_byte, hist_mean
from bench.node.cpu import CpuMeter
from bench.node.nodes import Nodes, vite_pids
from bench.node.page import PageLoader


def phase_wake(nodes: Nodes, args: argparse.Namespace, files: dict[str, str]) -> dict[str, Any]:
    """3. wake -> first byte on a node that stops Vites after 1 s idle."""
    flags = ("--max-running", "12", "--max-sessions", "1000", "--idle-seconds", "1")
    with (
        nodes.running("wake", *flags) as node,
        closing(Api(node.port)) as api,
        closing(PageLoader(node.port)) as loader,
    ):
        progress(f"wake: {args.wakes} sessions created and loaded, then left to go idle")
        sids = loader.create_loaded(api, files, args.wakes, 60)
        idle_waits = [api.wait_status(sid, {"idle"}, 20)[1] for sid in sids]
        m0 = api.metrics()
        cpu = CpuMeter(node)
        fb, full, page, bad, not_idle = [], [], [], [], 0
        for sid in sids:
            st, _ = api.wait_status(sid, {"idle"}, 20)
            if st != "idle":
                not_idle += 1
                continue
            vites = len(vite_pids(node.data_dir))
            if vites:  # the previous sample's Vite still shutting down
                time.sleep(1)
            code, t_first, t_all, _ = first_byte(node.port, f"/preview/{sid}/")
            if code != 200:
                bad.append(code)
            fb.append(t_first)
            full.append(t_all)
            page.append(loader.load(sid)["total_s"])
            api.wait_status(sid, {"idle"}, 20)  # back to quiet before the next sample
        m1 = api.metrics()
        for sid in sids:
            api.delete(sid)
        return {
            "first_byte_ms": summary_ms(fb),
            "html_complete_ms": summary_ms(full),
            "page_after_wake_ms": summary_ms(page),
            "node_vite_spawn_to_serving_mean_ms": hist_mean(
                m0, m1, "preview_node_vite_start_seconds"
            ),
            "wakes_counted_by_node": m1.get("preview_node_wakes_total", 0)
            - m0.get("preview_node_wakes_total", 0),
            "seconds_until_idle_mean": round(statistics.fmean(idle_waits), 2)
            if idle_waits
            else None,
            "non_200": bad,
            "never_idle": not_idle,
            "cpu": cpu.report(),
        }
