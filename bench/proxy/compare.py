"""The comparison run: every target (direct, the reference proxies, each router) in every
cell, then the WebSocket echo through each. With `--rounds N` each cell runs all targets N
times in turn (direct, nginx, haproxy, chp, router, direct, ...), so neighbouring runs see
the same noise and their ratios mean something on a busy machine."""

from __future__ import annotations

import argparse
from typing import Any

from bench.proxy.http_cells import is_noisy, measure_cell
from bench.proxy.layout import FILES, HOST, Layout
from bench.proxy.ratios import medians, ratios, tree_ratios
from bench.proxy.report import fmt_us
from bench.proxy.servers import serving_pids, start_reference, start_router, start_upstreams
from bench.proxy.targets import RouterTarget
from bench.proxy.websocket import ws_roundtrips
from tests.support.processes import Processes


def label(target: str, rnd: int | None, width: int) -> str:
    return f"{target}{'' if rnd is None else f' #{rnd + 1}'}".ljust(width)


def run_compare(
    args: argparse.Namespace,
    procs: Processes,
    layout: Layout,
    direct: bool,
    references: dict[str, str],
    routers: list[RouterTarget],
) -> dict[str, Any]:
    """`references`: proxy -> its binary (see `targets.binary`)."""
    server_core, load_core = args.server_core, args.load_core
    servers = start_upstreams(procs, layout, load_core)
    pids: dict[str, tuple[int, ...]] = {"upstream": serving_pids(servers.upstream, 1)}
    for proxy, binary in references.items():
        servers.proxies[proxy] = start_reference(procs, layout, proxy, binary, server_core)
        pids[proxy] = serving_pids(servers.proxies[proxy], 1 if proxy == "nginx" else 0)
    for r in routers:
        servers.proxies[r.name] = start_router(procs, layout, r, args.router_log_level, server_core)
        pids[r.name] = serving_pids(servers.proxies[r.name], r.workers if r.workers > 1 else 0)
    targets = [*(["direct"] if direct else []), *references, *(r.name for r in routers)]
    ports = {"direct": layout.ports["upstream"], **{t: layout.ports[t] for t in servers.proxies}}
    rounds: list[int | None] = list(range(args.rounds)) if args.rounds > 1 else [None]
    width = max(6, *(len(t) + (3 if args.rounds > 1 else 0) for t in targets))
    http: list[dict[str, Any]] = []
    for fname in args.files:
        for c in args.concurrency:
            for rnd in rounds:
                for target in targets:
                    url = f"http://{HOST}:{ports[target]}{layout.http_path(fname)}"
                    watch = {"upstream": pids["upstream"]}
                    if target != "direct":
                        watch["proxy"] = pids[target]
                    what = f"{fname:>4} c={c:<2} {label(target, rnd, width)}"
                    print(f"  http {what} ...", end="", flush=True)
                    res = measure_cell(url, c, args, layout.tmp, watch)
                    res.update(target=target, file=fname, file_bytes=FILES[fname], c=c)
                    if rnd is not None:
                        res["round"] = rnd
                    http.append(res)
                    lat = res["latency_us"]
                    print(f" {res['req_per_s']:>9.0f} req/s  p99 {fmt_us(lat.get('p99'))}")
    ws_ports = {**ports, "direct": layout.ports["ws"]}
    ws: list[dict[str, Any]] = []
    for rnd in rounds:
        for target in targets:
            print(f"  ws {label(target, rnd, width)} ...", end="", flush=True)
            res = ws_roundtrips(
                ws_ports[target], layout.ws_path, args.ws_messages, 200, args.seconds * 3
            )
            res["target"] = target
            if rnd is not None:
                res["round"] = rnd
            ws.append(res)
            print(f" p50 {fmt_us(res['p50_us'])}  p99 {fmt_us(res['p99_us'])}")
    for s in servers.proxies.values():
        if not s.alive():
            raise RuntimeError(f"{s.name} died during the run:\n{s.tail()}")
    names = [r.name for r in routers]
    out: dict[str, Any] = {
        "http": http,
        "websocket": ws,
        "medians": medians(http, targets),
        "ratios": {t: ratios(http, ws, t, list(references)) for t in names},
    }
    if len(names) > 1:
        out["trees"] = tree_ratios(http, ws, names, is_noisy)
    return out
