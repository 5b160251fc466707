"""The placement benchmark's tables. Reads the result dict only."""

from __future__ import annotations

from typing import Any

GOAL_MAX_OVER_MEAN = 1.10


def _num(v: float | int | None, fmt: str = ",") -> str:
    return "-" if v is None else format(v, fmt)


def print_tables(result: dict[str, Any]) -> None:
    m = result["meta"]
    print()
    print(
        f"Placement, simulated: {m['nodes']:,} nodes, {m['sessions']:,} creates, mix "
        f"random/affinity/sessionId {m['mix']} ({m['projects']:,} projects, Zipf s={m['zipf']}),"
    )
    print(
        f"{m['draining']} nodes draining from create {m['drain_at']:,}; at {m['change_at']:,} "
        f"{m['added']} added and {m['removed']} removed; load = running=R/{m['max_running']} + "
        f"sessions=S/{m['max_sessions']}; bound (1+{m['epsilon']})x mean"
    )
    hdr = (
        f"{'policy':<11} {'mix':<11} {'loads':<10} {'max/mean':>8} {'p99/mean':>8} "
        f"{'min/mean':>8} {'full':>5} {'503s':>8} {'failed':>6} {'home%':>6} "
        f"{'us p50':>7} {'us p99':>7} {'recreated':>9} {'s':>5} {'cpu s':>5}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in result["runs"]:
        sp = r["sessions_per_node"]
        home = r["affinity_on_home_node"]
        flag = f" (cut short at {r['creates']:,})" if r["truncated"] else ""
        print(
            f"{r['policy']:<11} {r['mix']:<11} {r['loads']:<10} {sp['max_over_mean']:>8.3f} "
            f"{sp['p99_over_mean']:>8.3f} {sp['min_over_mean']:>8.3f} {r['full_nodes']:>5} "
            f"{r['refused_503']:>8,} {r['failed_creates']:>6,} "
            f"{'-' if home is None else f'{home:.1%}':>6} "
            f"{r['placement_us']['p50']:>7.2f} {r['placement_us']['p99']:>7.2f} "
            f"{r['change'].get('recreated', 0):>9,} {r['elapsed_s']:>5.0f} {r['cpu_s']:>5.0f}{flag}"
        )
    on_draining = sum(r["placed_on_draining"] for r in result["runs"])
    print(f"sessions placed on a draining node, all runs: {on_draining}")
    lost = [
        f"{r['policy']} {r['loads']} {r['hashed_unreachable']:,} of {r['hashed_sessions']:,}"
        for r in result["runs"]
        if r["hashed_sessions"]
    ]
    print("client-chosen IDs held where routing does not ask (end of run): " + "; ".join(lost))
    print(f"goal max/mean <= {GOAL_MAX_OVER_MEAN:.2f} with bounded loads:")
    for r in result["runs"]:
        if not r["policy"].startswith("bounded"):
            continue
        sp = r["sessions_per_node"]
        verdict = "ok" if sp["max_over_mean"] <= GOAL_MAX_OVER_MEAN else "MISSED"
        print(
            f"  {r['policy']} {r['mix']} {r['loads']}: {sp['max_over_mean']:.4f} {verdict} "
            f"(max {sp['max']:,} sessions, mean {sp['mean']:,.1f}, "
            f"{1 + m['epsilon']:.2f} x mean = {(1 + m['epsilon']) * sp['mean']:,.1f})"
        )
    ids = result.get("ids")
    if ids:
        e, h = ids["encoded"], ids["hashed"]
        print()
        print(f"Ring change at create {m['change_at']:,}, {ids['alive']:,} sessions alive:")
        print(
            f"  adding {m['added']}: encoded IDs whose owner changes (session_nodes): "
            f"{e['moved_by_add']:,} of {e['ids']:,}"
        )
        print(
            f"  removing {m['removed']}: encoded IDs now UnknownSession: "
            f"{e['unknown_after_removal']:,} (sessions re-created, all kinds: {ids['recreated']:,})"
        )
        frac = h["first_node_changed_fraction"]
        print(
            f"  hashed IDs whose first ring node changes: {h['first_node_changed_by_add']:,} "
            f"of {h['ids']:,} ({_num(frac and round(frac * 100, 3))}%); held by that first node "
            f"after the add: {h['held_by_first_node_after_add']:,}; "
            f"not among the nodes a router asks: {h['not_reached_after_add']:,}"
        )
    rt = result["rings"]
    print()
    print(
        f"Ring build, {rt['nodes']:,} nodes ({rt['points']:,} points, routing + placement "
        f"rings): median of {rt['build_ms']['runs']}: {rt['build_ms']['median']:,.0f} ms "
        f"({rt['build_ms']['cpu_median']:,.0f} ms CPU); Ring.place p50 {rt['place_us_p50']:.1f} us"
    )
    if "uhashring_place_us_p50" in rt:
        print(
            f"  uhashring, placement ring only: build {rt['uhashring_build_ms']:,.0f} ms, "
            f"range(size=3) p50 {rt['uhashring_place_us_p50']:,.0f} us"
        )
