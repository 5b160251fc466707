"""The soak's tables, from the result dict only: traffic by kind, errors, HMR updates,
creates and deletes, every process's FDs and RSS, the machine's load, and the goals."""

from __future__ import annotations

from typing import Any

from bench.node.report import fmt, table
from bench.soak.sampler import STALE_S


def print_report(r: dict[str, Any]) -> None:
    m, t, u = r["meta"], r["traffic"], r["updates"]
    print(
        f"\n== soak: {m['seconds']:g} s of traffic ({r['run']['traffic_s']} s measured, setup "
        f"{r['run']['setup_s']} s), {m['sessions']} long-lived sessions on "
        f"{', '.join(sorted({s['node'] for s in r['run']['sessions']}))}, 2 routers =="
    )
    _traffic(t)
    _errors(t)
    print("\n== HMR updates and sessions ==")
    lat = t["latency_ms"].get("put -> hmr update", {})
    ev = t["events"]
    table(
        [
            ("edits pushed (PUT 200)", u["pushed"]),
            (f"updates seen within {u['deadline_s']:g} s", u["seen_in_time"]),
            ("missed (late + never seen)", f"{u['missed']} ({u['late']} + {u['never_seen']})"),
            ("updates naming no pushed marker", u["unknown_markers"]),
            ("PUT -> update p50 / p99 / max ms",
             f"{fmt(lat.get('p50'))} / {fmt(lat.get('p99'))} / {fmt(lat.get('max'))}"),
            ("HMR reconnects", ev.get("hmr reconnects", 0)),
            ("HMR full reloads", ev.get("hmr messages: full-reload", 0)),
            ("creates / deletes (churn)",
             f"{ev.get('creates (churn)', 0)} / {ev.get('deletes (churn)', 0)}"),
            ("keep-alive retries (stale connection)", ev.get("stale keep-alive retries", 0)),
        ],
        ("what", "count"),
    )  # fmt: skip
    _processes(r["processes"], r["kinds"], r["meta"]["warmup_s"])
    c = r["cpu"]
    print(
        f"\nmachine: {m['cpus']} cpus, load average {m['loadavg_start']} at the start, "
        f"{m['loadavg_end']} at the end; CPU busy {c['machine_busy_pct']}% of all cores, "
        f"this soak {c['ours_pct']}%, foreign {c['foreign_pct']}%"
    )
    print("\n== Goals (issue 14) ==")
    table([(g["metric"], g["value"], g["goal"], g["verdict"]) for g in r["goals"]],
          ("metric", "value", "goal", "verdict"))  # fmt: skip
    print(f"\nsoak: {'PASS' if r['passed'] else 'MISS'}")


def _traffic(t: dict[str, Any]) -> None:
    print("\n== Requests (latency ms) ==")
    errs: dict[str, int] = {}
    for key, n in t["errors"].items():
        kind = key.split(":", 1)[0]
        errs[kind] = errs.get(kind, 0) + n
    rows: list[tuple[Any, ...]] = []
    for kind, n in t["requests"].items():
        s = t["latency_ms"].get(kind, {})
        rows.append((kind, n, errs.get(kind, 0), fmt(s.get("p50")), fmt(s.get("p99")),
                     fmt(s.get("max"))))  # fmt: skip
    page = t["latency_ms"].get("page load (whole graph)", {})
    if page.get("n"):
        rows.append(("(whole page load)", page["n"], "-", fmt(page["p50"]), fmt(page["p99"]),
                     fmt(page["max"])))  # fmt: skip
    rows.append(("total", t["requests_total"], t["errors_total"], "", "", ""))
    table(rows, ("kind", "requests", "errors", "p50", "p99", "max"))


def _errors(t: dict[str, Any]) -> None:
    if not t["errors"]:
        return
    print("\n== Errors by kind ==")
    table(list(t["errors"].items()), ("kind: what", "count"))
    print("first ones:")
    for e in t["error_samples"][:10]:
        print(f"  {e}")


def _processes(procs: dict[str, Any], kinds: dict[str, str], warmup_s: float) -> None:
    print(
        f"\n== Processes (start = first sample after the {warmup_s:g} s warm-up; growth = "
        "lowest of the last quarter of the samples after it - lowest of the first quarter) =="
    )
    rows: list[tuple[Any, ...]] = []
    for name, s in procs.items():
        if not s.get("judged"):
            rows.append((name, kinds.get(name, "?"), s.get("samples", 0), *["-"] * 13))
            continue
        rows.append((
            name, kinds.get(name, "?"), s["samples"],
            s["fd_start"], s["fd_end"], s["fd_max"], f"{s['fd_growth']:+d}",
            f"{s['files_start']}/{s['files_end']}", f"{s['files_growth']:+d}",
            s["orphans_max"], f"{s['stale_start']}/{s['stale_end']}", s["stale_max"],
            f"{s['stale_growth']:+d}",
            s["rss_start_mib"], s["rss_end_mib"], s["rss_max_mib"], f"{s['rss_growth_mib']:+.1f}",
        ))  # fmt: skip
    table(
        rows,
        ("process", "kind", "samples", "FDs start", "end", "max", "growth",
         "files s/e", "growth", "orphans max", "stale s/e", "max", "growth",
         "RSS MiB start", "end", "max", "growth"),
    )  # fmt: skip
    print(
        "files: FDs that are not sockets; orphans: sockets whose peer has closed, still held;"
        f" stale: orphans held {STALE_S:g} s or more"
    )
