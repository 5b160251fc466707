"""The proxy benchmark's tables: HTTP cells, medians over rounds, WebSocket echo, each
router against each proxy, the issue's goals, router targets against each other, and the
`--profile` summary. Reads the result dict only."""

from __future__ import annotations

import statistics
from typing import Any

from bench.proxy.http_cells import NOISE_PCT, is_noisy
from bench.proxy.websocket import WS_PAYLOAD


def fmt_us(v: float | None) -> str:
    if v is None or v != v:
        return "-"
    return f"{v / 1000:.2f}ms" if v >= 1000 else f"{v:.0f}us"


def _label(r: dict[str, Any]) -> str:
    return str(r["target"]) + (f" #{r['round'] + 1}" if "round" in r else "")


def print_tables(result: dict[str, Any]) -> None:
    print()
    print(f"Pinning: {result['meta']['pinning']}")
    print("srv%/load%: busy share of the server core / the load core during the measured run;")
    print(f"NOISY: over {NOISE_PCT:.0f}% of the server core went to processes not under test")
    w = max(7, *(len(_label(r)) for r in result["http"] + result["websocket"]))
    _print_http(result, w)
    if result["meta"].get("rounds", 1) > 1:
        _print_medians(result["medians"])
    _print_ws(result["websocket"], w)
    for target, rat in result["ratios"].items():
        _print_ratios(rat, target)
    _print_goals(result["ratios"])
    if "trees" in result:
        _print_trees(result["trees"])


def _print_ws(ws: list[dict[str, Any]], w: int) -> None:
    direct = statistics.median([r["p50_us"] for r in ws if r["target"] == "direct"] or [0])
    print()
    print(f"WebSocket echo, {len(WS_PAYLOAD)}-byte messages, sequential round trips")
    if direct:
        print("(+direct: p50 minus the median p50 of direct)")
    hdr = f"{'target':<{w}} {'msgs':>6} {'p50':>8} {'+direct':>8} {'p99':>8} {'mean':>8} {'max':>8}"
    print(hdr)
    print("-" * len(hdr))
    for r in ws:
        over = f"{r['p50_us'] - direct:+.0f}us" if direct and r["target"] != "direct" else "-"
        print(
            f"{_label(r):<{w}} {r['messages']:>6} {fmt_us(r['p50_us']):>8} {over:>8} "
            f"{fmt_us(r['p99_us']):>8} {fmt_us(r['mean_us']):>8} {fmt_us(r['max_us']):>8}"
        )


def _print_medians(rows: list[dict[str, Any]]) -> None:
    print()
    print("Medians over the rounds (proxy CPU per request: user+sys of its processes)")
    w = max(7, *(len(r["target"]) for r in rows))
    hdr = f"{'cell':<9} {'target':<{w}} {'req/s':>9} {'p50':>8} {'p99':>8} {'cpu/req':>9} runs"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        cpu = r["cpu_us_per_req"]
        print(
            f"{r['file'] + ' c=' + str(r['c']):<9} {r['target']:<{w}} {r['req_per_s']:>9.0f} "
            f"{fmt_us(r['p50_us']):>8} {fmt_us(r['p99_us']):>8} "
            f"{'-' if cpu != cpu else f'{cpu:.1f}us':>9} {r['runs']:>4}"
        )


def _x(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}x"


def _print_ratios(rat: dict[str, Any], router: str) -> None:
    refs = list(rat["vs"])
    if not refs:
        return
    print()
    print(f"{router} / each proxy (req/s: higher is better; p99 and CPU per request: lower)")
    hdr = f"{'cell':<9}" + "".join(f" | {ref + ' req/s':>13} {'p99':>6} {'cpu':>6}" for ref in refs)
    print(hdr)
    print("-" * len(hdr))
    for key in [k for k in rat["vs"][refs[0]] if k != "ws"]:
        line = f"{key.replace('_c', ' c='):<9}"
        for ref in refs:
            v = rat["vs"][ref].get(key, {})
            line += (
                f" | {_x(v.get('throughput'), 3):>13} {_x(v.get('p99')):>6} {_x(v.get('cpu')):>6}"
            )
        print(line)
    line = f"{'ws echo':<9}"
    for ref in refs:
        v = rat["vs"][ref]["ws"]
        line += f" | {'p50 ' + _x(v['p50']):>13} {_x(v['p99']):>6} {'':>6}"
    print(line)


def _print_goals(ratios: dict[str, Any]) -> None:
    """One row per router target, one column per goal of the issue: value and ok/MISS."""
    if not ratios:
        return
    first = next(iter(ratios.values()))["goals"]
    cols = {k: max(len(g["label"]), 12) for k, g in first.items()}
    w = max(7, *(len(t) for t in ratios))
    print()
    print("Goals (issue 13) from this run's medians: ok, MISS, or - when not measured")
    hdr = f"{'router':<{w}}" + "".join(f" | {g['label']:>{cols[k]}}" for k, g in first.items())
    print(hdr)
    print("-" * len(hdr))
    for target, rat in ratios.items():
        line = f"{target:<{w}}"
        for k, g in rat["goals"].items():
            v = g["value"]
            shown = "-" if v is None else (f"{v:+.0f}us" if k.startswith("ws") else f"{v:.2f}x")
            mark = "" if g["met"] is None else (" ok" if g["met"] else " MISS")
            line += f" | {shown + mark:>{cols[k]}}"
        print(line)


def _print_http(result: dict[str, Any], w: int) -> None:
    hdr = (
        f"{'file':>5} {'c':>3} {'target':<{w}} {'req/s':>9} {'mean':>8} {'p50':>8} {'p99':>8} "
        f"{'max':>8} {'proxy cpu/req (usr+sys)':>24} {'upstr cpu/req':>13} "
        f"{'srv%':>5} {'load%':>5} {'fail':>5}"
    )
    meta = result["meta"]
    srv = f"cpu{meta['server_core'] if meta['server_core'] is not None else 0}"
    load = f"cpu{meta['load_core'] if meta['load_core'] is not None else 1}"
    print(hdr)
    print("-" * len(hdr))
    for r in result["http"]:
        lat = r["latency_us"]
        cpu = r["cpu_us_per_req"]
        busy = r["core_busy_pct"]
        req = r.get("requests", {})
        fail = req.get("failed", 0) + req.get("errored", 0) + req.get("timeout", 0)
        fail += sum(v for k, v in r.get("status", {}).items() if k != "2xx")
        proxy_cpu = "-"
        if "proxy" in cpu:
            u, sy = r["cpu_user_us_per_req"]["proxy"], r["cpu_sys_us_per_req"]["proxy"]
            proxy_cpu = f"{cpu['proxy']:.1f}us ({u:.0f}+{sy:.0f})"
        noisy = "  NOISY" if is_noisy(r) else ""
        print(
            f"{r['file']:>5} {r['c']:>3} {_label(r):<{w}} {r['req_per_s']:>9.0f} "
            f"{fmt_us(lat.get('mean')):>8} {fmt_us(lat.get('p50')):>8} {fmt_us(lat.get('p99')):>8} "
            f"{fmt_us(lat.get('max')):>8} {proxy_cpu:>24} {cpu['upstream']:>11.1f}us "
            f"{busy.get(srv, 0):>5.0f} {busy.get(load, 0):>5.0f} {fail:>5}{noisy}"
        )


def _print_trees(trees: dict[str, Any]) -> None:
    base = trees["baseline"]
    print()
    print(f"Router targets against {base}: medians over the rounds; ratios are medians of")
    print("each round's ratio to the baseline's run just before it (req/s: higher is better;")
    print("p99 and CPU per request: lower is better)")
    w = max(6, *(len(t) for t in trees["websocket"]["by_tree"]))
    hdr = (
        f"{'cell':<9} {'router':<{w}} {'req/s':>9} {'p50':>8} {'p99':>8} {'cpu/req':>9} "
        f"{'noisy':>6}   {'req/s x':>8} {'p99 x':>6} {'cpu x':>6}   runs (req/s)"
    )
    print(hdr)
    print("-" * len(hdr))
    for row in trees["http"]:
        cell = f"{row['file']} c={row['c']}"
        for t, v in row["by_tree"].items():
            vs = row["vs_baseline"].get(t)
            ratio = (
                f"{vs['throughput']:>7.3f}x {vs['p99']:>5.2f}x {vs['cpu_per_req']:>5.2f}x"
                if vs
                else f"{'':>8} {'':>6} {'':>6}"
            )
            print(
                f"{cell:<9} {t:<{w}} {v['req_per_s']:>9.0f} {fmt_us(v['p50_us']):>8} "
                f"{fmt_us(v['p99_us']):>8} {v['cpu_us_per_req']:>7.1f}us "
                f"{v['noisy_runs']:>2}/{v['runs']:<3}   {ratio}   "
                f"{', '.join(str(x) for x in v['req_per_s_runs'])}"
            )
    ws = trees["websocket"]
    for t, v in ws["by_tree"].items():
        vs = ws["vs_baseline"].get(t)
        ratio = f"p50 {vs['p50']:.3f}x  p99 {vs['p99']:.3f}x" if vs else ""
        print(
            f"{'ws echo':<9} {t:<{w}} p50 {fmt_us(v['p50_us'])}  p99 {fmt_us(v['p99_us'])}  "
            f"({v['runs']} runs)  {ratio}"
        )


def print_profile(s: dict[str, Any]) -> None:
    tools = [t for t in ("pyinstrument", "py_spy") if t in s]
    print()
    for t in tools:
        r = s[t]
        print(
            f"{t}: {r['samples']} samples, {r['req_per_s_under_profiler']:.0f} req/s under the "
            f"profiler, idle {r['idle_pct']}%"
        )
    print("\nInclusive share of busy (non-idle) time:")
    print(f"  {'category':<48}" + "".join(f"{t:>14}" for t in tools))
    first = s[tools[0]]["categories_pct_busy"]
    for k in sorted(first, key=lambda k: -s[tools[-1]]["categories_pct_busy"][k]):
        print(f"  {k:<48}" + "".join(f"{s[t]['categories_pct_busy'][k]:>13.1f}%" for t in tools))
    for t in tools:
        print(f"\n{t}: self time by module (% of busy)")
        for row in s[t]["self_time_by_module"][:10]:
            print(f"  {row['pct_busy']:>5.1f}%  {row['name']}")
        print(f"{t}: top functions by self time (% of busy)")
        for row in s[t]["self_time_top_functions"][:15]:
            print(f"  {row['pct_busy']:>5.1f}%  {row['name']}")
    print(f"\nText profile: {s['pyinstrument']['text_profile']}")
