"""Ratios from measured cells: a router against nginx (the issue's target at 1 KiB, c=32),
and each router source tree against the first one (`--router-tree`).

With several interleaved rounds a cell's value is the median over its rounds, and a
tree-to-tree ratio is the median of the per-round ratios: neighbouring runs share the
machine's noise, so their ratio is steadier than a ratio of two medians. Pure functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

Cell = tuple[str, int]  # (file, concurrency)


def cells(http: list[dict[str, Any]]) -> list[Cell]:
    """The (file, c) cells measured, in the order they ran."""
    return list(dict.fromkeys((r["file"], r["c"]) for r in http))


def runs(http: list[dict[str, Any]], target: str, cell: Cell) -> list[dict[str, Any]]:
    return [r for r in http if r["target"] == target and (r["file"], r["c"]) == cell]


def p99(r: dict[str, Any]) -> float:
    return float(r["latency_us"].get("p99", 0))


def proxy_cpu(r: dict[str, Any]) -> float:
    return float(r["cpu_us_per_req"].get("proxy", float("nan")))


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(
    http: list[dict[str, Any]], ws: list[dict[str, Any]], router: str = "router"
) -> dict[str, Any]:
    """router/nginx per cell (throughput and p99), for the WebSocket echo, and the target."""
    out: dict[str, Any] = {}
    for cell in cells(http):
        n, r = runs(http, "nginx", cell), runs(http, router, cell)
        n_thr = _median([x["req_per_s"] for x in n])
        thr = _median([x["req_per_s"] for x in r]) / n_thr if n_thr else float("nan")
        ratio_p99 = _median([p99(x) for x in r]) / max(_median([p99(x) for x in n]), 1e-9)
        out[f"{cell[0]}_c{cell[1]}"] = {"throughput": round(thr, 3), "p99": round(ratio_p99, 2)}

    def ws_median(target: str, key: str) -> float:
        return _median([w[key] for w in ws if w["target"] == target])

    out["ws"] = {
        "p50": round(ws_median(router, "p50_us") / ws_median("nginx", "p50_us"), 2),
        "p99": round(ws_median(router, "p99_us") / ws_median("nginx", "p99_us"), 2),
    }
    key = out.get("1k_c32")
    if key is not None:
        out["target_1k_c32"] = {
            "throughput_at_least_0.2x": key["throughput"] >= 0.2,
            "p99_at_most_4x": key["p99"] <= 4.0,
        }
    return out


def _per_round(base: list[float], other: list[float]) -> float:
    pairs = [o / b for b, o in zip(base, other, strict=False) if b]
    return round(_median(pairs), 3)


def tree_ratios(
    http: list[dict[str, Any]],
    ws: list[dict[str, Any]],
    routers: list[str],
    noisy: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """Each router tree against `routers[0]`: medians per cell, ratios of neighbouring runs."""
    base = routers[0]
    out: dict[str, Any] = {"baseline": base, "http": [], "websocket": {}}
    for cell in cells(http):
        by_tree: dict[str, Any] = {}
        series: dict[str, dict[str, list[float]]] = {}
        for t in routers:
            rs = sorted(runs(http, t, cell), key=lambda r: r.get("round", 0))
            series[t] = {
                "throughput": [r["req_per_s"] for r in rs],
                "p99": [p99(r) for r in rs],
                "cpu_per_req": [proxy_cpu(r) for r in rs],
            }
            by_tree[t] = {
                "req_per_s": round(_median(series[t]["throughput"]), 1),
                "p50_us": _median([r["latency_us"].get("p50", 0) for r in rs]),
                "p99_us": _median(series[t]["p99"]),
                "cpu_us_per_req": round(_median(series[t]["cpu_per_req"]), 2),
                "req_per_s_runs": [round(v) for v in series[t]["throughput"]],
                "runs": len(rs),
                "noisy_runs": sum(1 for r in rs if noisy(r)),
            }
        vs = {
            t: {k: _per_round(series[base][k], series[t][k]) for k in series[t]}
            for t in routers[1:]
        }
        out["http"].append({"file": cell[0], "c": cell[1], "by_tree": by_tree, "vs_baseline": vs})
    ws_by: dict[str, Any] = {}
    ws_series: dict[str, dict[str, list[float]]] = {}
    for t in routers:
        ws_t = sorted((w for w in ws if w["target"] == t), key=lambda w: w.get("round", 0))
        ws_series[t] = {"p50": [w["p50_us"] for w in ws_t], "p99": [w["p99_us"] for w in ws_t]}
        ws_by[t] = {
            "p50_us": _median(ws_series[t]["p50"]),
            "p99_us": _median(ws_series[t]["p99"]),
            "runs": len(ws_t),
        }
    out["websocket"] = {
        "by_tree": ws_by,
        "vs_baseline": {
            t: {k: _per_round(ws_series[base][k], ws_series[t][k]) for k in ws_series[t]}
            for t in routers[1:]
        },
    }
    return out
