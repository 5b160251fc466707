"""The node benchmark's tables: the issue's targets with ok/MISSED, latencies, where the
time goes, CPU per phase, memory, and the registered-sessions phase. Reads the result dict
only; a phase that did not run leaves its rows out."""

from __future__ import annotations

import os
from typing import Any

TARGETS = {
    "create_201_p50_ms": 20.0,
    "create_ready_p50_ms": 1000.0,
    "wake_first_byte_p50_ms": 300.0,  # the sandbox issue (the restructure issue said 1 s)
    "idle_vite_pss_mib": 120.0,  # the sandbox issue (the restructure issue said 150)
}

# (metric, path into the result, unit, target as printed, TARGETS key)
HEADLINE: list[tuple[str, tuple[str, ...], str, str, str]] = [
    ("create -> 201 p50, paced (quiet)", ("create", "paced", "create_ms", "p50"),
     " ms", "<= 20 ms", "create_201_p50_ms"),
    ("create -> 201 p50, burst (Vites booting)", ("create", "burst", "create_ms", "p50"),
     " ms", "<= 20 ms", "create_201_p50_ms"),
    ("create -> ready p50", ("ready", "create_ready", "ready_201_ms", "p50"),
     " ms", "<= 1000 ms", "create_ready_p50_ms"),
    ("wake -> first byte p50", ("wake", "first_byte_ms", "p50"),
     " ms", "<= 300 ms", "wake_first_byte_p50_ms"),
    ("PSS, one idle Vite (after page, 5 s)", ("ready", "memory", "one_vite", "settled_5s", "Pss"),
     " MiB", "<= 120 MB", "idle_vite_pss_mib"),
    ("PSS per Vite, 10 running (mean)",
     ("ready", "memory", "ten_vites", "per_vite_pss_mib", "mean"),
     " MiB", "<= 120 MB", "idle_vite_pss_mib"),
]  # fmt: skip


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return "ok" if value <= target else "MISSED"


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}{unit}" if abs(v) >= 10 else f"{v:.2f}{unit}"
    return f"{v}{unit}"


def _dig(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path[:-1]:
        d = d.get(key, {})
    return d.get(path[-1])


def headline(r: dict[str, Any]) -> list[tuple[str, Any, str, str]]:
    """(metric, value, target, verdict) rows for the issue's targets."""
    rows = []
    for label, path, unit, target, key in HEADLINE:
        v = _dig(r, path)
        rows.append((label, fmt(v, unit), target, verdict(v, TARGETS[key])))
    return rows


def table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> None:
    cols = [header, *[tuple(str(x) for x in r) for r in rows]]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print(line)
    for r in cols[1:]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def lat_row(label: str, s: dict[str, Any]) -> tuple[Any, ...]:
    if not s or not s.get("n"):
        return (label, 0, "-", "-", "-", "-")
    return (label, s["n"], fmt(s["p50"]), fmt(s["p90"]), fmt(s["p99"]), fmt(s["max"]))


def print_report(r: dict[str, Any]) -> None:
    print("\n== Targets (from the issue) ==")
    table(headline(r), ("metric", "value", "target", "verdict"))
    c = r.get("create", {})
    cr = r.get("ready", {}).get("create_ready", {})
    w = r.get("wake", {})
    m = r.get("many", {})
    _latencies(c, cr, w, m)
    _breakdown(c, cr, w)
    _cpu(c, cr, w, m)
    _memory(r.get("ready", {}).get("memory", {}))
    if m:
        _many(m)


def _latencies(c: dict[str, Any], cr: dict[str, Any], w: dict[str, Any], m: dict[str, Any]) -> None:
    print("\n== Latencies (ms) ==")
    rows = []
    if c:
        rows += [
            lat_row("create->201 burst", c["burst"]["create_ms"]),
            lat_row("create->201 paced", c["paced"]["create_ms"]),
            lat_row("DELETE after burst", c["burst"]["delete_ms"]),
            lat_row("DELETE paced (Vite up)", c["paced"]["delete_ms"]),
        ]
    if cr:
        rows += [
            lat_row("create->ready (?wait=ready)", cr["ready_201_ms"]),
            lat_row("first page: index.html", cr["first_page_html_ms"]),
            lat_row(
                f"first page: all ~{cr['first_page_requests']:.0f} req", cr["first_page_full_ms"]
            ),
        ]
    if w:
        rows += [
            lat_row("wake -> first byte", w["first_byte_ms"]),
            lat_row("wake -> index.html complete", w["html_complete_ms"]),
            lat_row("page load after wake", w["page_after_wake_ms"]),
        ]
    if m:
        rows += [
            lat_row(f"create, first {m['k']} of {m['sessions']}", m["create_first_k_ms"]),
            lat_row(f"create, last {m['k']} of {m['sessions']}", m["create_last_k_ms"]),
            lat_row(f"GET session ({m['sessions']} held)", m["get_one_ms"]),
        ]
    table(rows, ("what", "n", "p50", "p90", "p99", "max"))


def _breakdown(c: dict[str, Any], cr: dict[str, Any], w: dict[str, Any]) -> None:
    print("\n== Where the time goes ==")
    rows: list[tuple[Any, ...]] = []
    if c:
        b = c["burst"]
        rows.append(
            (
                "burst: creates/s; Vites alive after; node's load header",
                f"{b['creates_per_s']}/s; {b['vites_alive_after']}; {b['node_load_after']}",
            )
        )
    if cr:
        startup = cr["node_startup"]
        rows += [
            (
                "node: Vite spawn -> serving (mean)",
                fmt(cr["node_vite_spawn_to_serving_mean_ms"], " ms"),
            ),
            ("node: create -> ready (mean)", fmt(cr["node_create_to_ready_mean_ms"], " ms")),
            ("`node -e 0` (median of 3)", fmt(startup["node_bare_ms"], " ms")),
            (
                "node + launcher imports (vite, react, tailwind)",
                fmt(startup["node_launcher_imports_ms"], " ms"),
            ),
            *[
                (f"first page: slowest {k} request (mean)", fmt(v, " ms"))
                for k, v in cr["first_page_slowest_request_ms_mean"].items()
            ],
            ("201 statuses with ?wait=ready", cr["statuses_in_201"]),
            ("first page response statuses", cr["first_page_statuses"]),
        ]
    if w:
        rows += [
            (
                "wake: node Vite spawn -> serving (mean)",
                fmt(w["node_vite_spawn_to_serving_mean_ms"], " ms"),
            ),
            ("wake: s until `idle` after load (mean)", fmt(w["seconds_until_idle_mean"], " s")),
            ("wake: non-200 / never idle", f"{w['non_200']} / {w['never_idle']}"),
        ]
    table(rows, ("what", "value"))


def _cpu(c: dict[str, Any], cr: dict[str, Any], w: dict[str, Any], m: dict[str, Any]) -> None:
    rows = []
    for label, d in (
        ("create burst", c.get("burst", {}).get("cpu")),
        ("create paced", c.get("paced", {}).get("cpu")),
        ("create -> ready + page", cr.get("cpu")),
        ("wake", w.get("cpu")),
        ("many sessions", m.get("cpu")),
    ):
        if d:
            rows.append(
                (label, d["seconds"], d["machine_busy_pct"], d["ours_pct"], d["foreign_pct"])
            )
    if rows:
        print(f"\n== CPU while measuring (% of all {os.cpu_count()} cores) ==")
        table(rows, ("phase", "s", "machine busy %", "this bench %", "foreign %"))
        print("foreign: what other processes on the machine used; it inflates every number")


def _mem_row(label: str, d: dict[str, Any], procs: Any) -> tuple[Any, ...]:
    keys = ("Pss", "Pss_Anon", "Pss_File", "Rss")
    pss, anon, file, rss = (fmt(d.get(k)) for k in keys)
    return (label, pss, anon, file, rss, procs)


def _memory(mem: dict[str, Any]) -> None:
    if not mem:
        return
    print("\n== Memory (MiB; Vite = its whole process group) ==")
    one = mem["one_vite"]
    rows = [
        _mem_row(label, one[key], one[key].get("processes"))
        for label, key in (
            ("one Vite at ready", "at_ready"),
            ("one Vite after its page", "after_page"),
            ("one Vite after page + 5 s", "settled_5s"),
        )
    ]
    rows.append(_mem_row("bare node + launcher imports", one["bare_runtime"], 1))
    t = mem["ten_vites"]
    p, a, rs = t["per_vite_pss_mib"], t["per_vite_pss_anon_mib"], t["per_vite_rss_mib"]
    n = t["vites"]
    if p:
        label = f"per Vite of {n} (mean; min-max PSS {p['min']}-{p['max']})"
        rows.append((label, fmt(p["mean"]), fmt(a["mean"]), "", fmt(rs["mean"]), ""))
    rows.append((f"all {n} Vites", fmt(t["total_pss_mib"]), "", "", fmt(t["total_rss_mib"]), ""))
    node_pss, node_rss = fmt(t["node_process_pss_mib"]), fmt(t["node_process_rss_mib"])
    rows.append(("the node process (10 Vites)", node_pss, "", "", node_rss, 1))
    table(rows, ("what", "PSS", "PSS anon", "PSS file", "RSS", "procs"))


def _many(m: dict[str, Any]) -> None:
    print(f"\n== {m['sessions']} registered sessions, --max-running 2 ==")
    rss = m["node_rss_mib"]
    rows = [
        ("node RSS empty / warm / all (MiB)", " / ".join(str(v) for v in rss.values())),
        ("node RSS growth per session", f"{m['node_rss_kib_per_session']} KiB"),
        (
            "disk per session dir (allocated / apparent)",
            f"{m['disk_session_dir_kib']} / {m['disk_session_dir_apparent_kib']} KiB",
        ),
        (
            "vite-cache per session (mean all / when used; used)",
            f"{m['disk_vite_cache_kib_mean_all']} / "
            f"{m['disk_vite_cache_kib_mean_when_used']} KiB;"
            f" {m['vite_cache_dirs_used']}",
        ),
        ("creates/s", m["creates_per_s"]),
        ("statuses after", m["statuses"]),
        ("Vites alive after; node's load header", f"{m['vites_alive']}; {m['node_load']}"),
        ("GET /kontext/preview (list all)", f"{m['list_all_ms']} ms"),
        ("restart -> /healthz with them on disk", f"{m.get('restart_to_healthy_s')} s"),
        (
            "sessions after restart; node RSS",
            f"{m.get('sessions_after_restart')}; {m.get('node_rss_after_restart_mib')} MiB",
        ),
    ]
    table(rows, ("what", "value"))
