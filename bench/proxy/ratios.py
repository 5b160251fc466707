"""Ratios from measured cells: each router against each reference proxy (nginx, HAProxy,
configurable-http-proxy) with the issue's goals, and each router target against the first
one (`--router-tree`, `--router-workers`).

With several interleaved rounds a cell's value is the median over its rounds, and a
tree-to-tree ratio is the median of the per-round ratios: neighbouring runs share the
machine's noise, so their ratio is steadier than a ratio of two medians. Pure functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
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


def _key(cell: Cell) -> str:
    return f"{cell[0]}_c{cell[1]}"


def _ratio(a: float, b: float, digits: int) -> float | None:
    """a/b, None when either is missing (nan) or b is 0: a target that did not run."""
    if a != a or b != b or not b:
        return None
    return round(a / b, digits)


def cell_medians(http: list[dict[str, Any]], target: str, cell: Cell) -> dict[str, Any]:
    """One target in one cell over its rounds: median req/s, p50, p99, proxy CPU/request."""
    rs = runs(http, target, cell)
    return {
        "req_per_s": round(_median([r["req_per_s"] for r in rs]), 1),
        "p50_us": _median([float(r["latency_us"].get("p50", 0)) for r in rs]),
        "p99_us": _median([p99(r) for r in rs]),
        "cpu_us_per_req": round(_median([proxy_cpu(r) for r in rs]), 2),
        "runs": len(rs),
    }


def medians(http: list[dict[str, Any]], targets: list[str]) -> list[dict[str, Any]]:
    """Per cell, per target: `cell_medians`, in the order the cells and targets ran."""
    out = []
    for cell in cells(http):
        for t in targets:
            row = cell_medians(http, t, cell)
            if row["runs"]:
                out.append({"file": cell[0], "c": cell[1], "target": t, **row})
    return out


def _ws_median(ws: list[dict[str, Any]], target: str, key: str) -> float:
    return _median([w[key] for w in ws if w["target"] == target])


def ratios(
    http: list[dict[str, Any]], ws: list[dict[str, Any]], router: str, references: list[str]
) -> dict[str, Any]:
    """`router` against each reference proxy that ran: per cell throughput, p99 and CPU per
    request (medians over the rounds, then their ratio), the WebSocket echo's p50/p99; the
    echo's extra microseconds over direct; and the issue's goals, met or not."""
    vs: dict[str, Any] = {}
    for ref in references:
        per: dict[str, Any] = {}
        for cell in cells(http):
            r, n = cell_medians(http, router, cell), cell_medians(http, ref, cell)
            if not r["runs"] or not n["runs"]:
                continue
            per[_key(cell)] = {
                "throughput": _ratio(r["req_per_s"], n["req_per_s"], 3),
                "p99": _ratio(r["p99_us"], n["p99_us"], 2),
                "cpu": _ratio(r["cpu_us_per_req"], n["cpu_us_per_req"], 2),
            }
        per["ws"] = {
            k: _ratio(_ws_median(ws, router, f"{k}_us"), _ws_median(ws, ref, f"{k}_us"), 2)
            for k in ("p50", "p99")
        }
        vs[ref] = per
    over = {
        k: _ws_median(ws, router, f"{k}_us") - _ws_median(ws, "direct", f"{k}_us")
        for k in ("p50", "p99")
    }
    over_us = {k: None if v != v else round(v, 1) for k, v in over.items()}
    return {"vs": vs, "ws_over_direct_us": over_us, "goals": goals(vs, over_us)}


@dataclass(frozen=True)
class Goal:
    """One line of the issue's goal table: `metric` of the router against `ref` in `cell`."""

    key: str
    ref: str  # a reference proxy, or "direct" for the WebSocket's extra microseconds
    cell: str  # "1k_c32", "100k_c32", or "ws"
    metric: str  # "cpu", "p99", "throughput" (ratios) or "p50" (microseconds over direct)
    limit: float
    at_most: bool  # the value must be <= limit (else >=)

    @property
    def label(self) -> str:
        what = {"cpu": "cpu", "p99": "p99", "throughput": "req/s", "p50": "ws p50"}[self.metric]
        cell = "" if self.cell == "ws" else f" {self.cell.replace('_c', ' c=')}"
        bound = f"{'<=' if self.at_most else '>='}"
        if self.ref == "direct":
            return f"{what} {bound} direct+{self.limit:g}us"
        return f"{what}{cell} {bound} {self.limit:g}x {self.ref}"


GOALS = (
    Goal("cpu_1k_c32_le_0.5x_chp", "chp", "1k_c32", "cpu", 0.5, True),
    Goal("cpu_1k_c32_le_8x_nginx", "nginx", "1k_c32", "cpu", 8.0, True),
    Goal("p99_1k_c32_le_4x_nginx", "nginx", "1k_c32", "p99", 4.0, True),
    Goal("ws_p50_le_direct_plus_60us", "direct", "ws", "p50", 60.0, True),
    Goal("throughput_100k_c32_ge_0.5x_nginx", "nginx", "100k_c32", "throughput", 0.5, False),
)


def goals(vs: dict[str, Any], ws_over_direct_us: dict[str, float | None]) -> dict[str, Any]:
    """Each goal: its value in this run, its limit, and `met` (None: not measured here,
    because the reference or the cell did not run)."""
    out: dict[str, Any] = {}
    for g in GOALS:
        if g.ref == "direct":
            value = ws_over_direct_us.get(g.metric)
        else:
            value = vs.get(g.ref, {}).get(g.cell, {}).get(g.metric)
        met = None if value is None else (value <= g.limit if g.at_most else value >= g.limit)
        out[g.key] = {"label": g.label, "value": value, "limit": g.limit, "met": met}
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
    """Each router target against `routers[0]`: medians per cell, ratios of neighbouring
    runs (trees, or worker counts)."""
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
                **cell_medians(http, t, cell),
                "req_per_s_runs": [round(v) for v in series[t]["throughput"]],
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
