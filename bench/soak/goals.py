"""The soak's goals (issue 14), judged from its numbers: pure functions, no IO.

- 0 errors, 0 missed updates;
- FDs flat. A process's FD count at one instant includes whatever is in flight (keep-alive
  connections, tunnels, pooled upstream connections, a dev server's keep-alive sockets,
  which Vite closes 5 s after their last request, pipes of a churned session's Vite): the
  total swings by 20 or more with the traffic while nothing leaks. So the total is reported
  and the goal judges the two counts a leak raises and traffic does not:
  `files` (every FD that is not a socket: files, pipes, epoll, inotify, eventfd): the
  lowest count over the last quarter of the samples after the warm-up (at least
  MIN_WINDOW samples) at most `fd_tolerance` above the lowest over the first quarter
  (floors, because a churned session's Vite adds its pipes to its node while it runs);
  and `stale_orphans`, sockets the process still holds STALE_S (15 s) after their peer
  closed them (TCP in CLOSE_WAIT, a unix socket whose peer is gone): a healthy process
  closes its end within seconds, so a leaked socket becomes one of these and nothing in
  flight does; from the first sample after the warm-up to the last at most
  ORPHAN_TOLERANCE more (routers and nodes only: a sandboxed dev server's sockets live in
  its own network namespace, where `ss` here does not see their peers);
- RSS growth, the same floors: at most 15 MiB per router, 40 MiB per node (the
  `preview-node` process itself). A dev server's RSS is reported beside them, with no goal
  of its own (the issue sets none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MIN_WINDOW = 3
RSS_GOAL_MIB = {"router": 15.0, "node": 40.0}
FD_TOLERANCE = 8
ORPHAN_TOLERANCE = 2  # e.g. a pooled connection its node closed while it sat in the pool
ORPHANS_JUDGED = ("router", "node")


def process_stats(
    samples: Sequence[Mapping[str, Any]], name: str, warmup_s: float
) -> dict[str, Any]:
    """FD and RSS start/end/max/growth of one process; start is after the warm-up, growth
    compares the floors of the first and last quarters after it."""
    rows = [(s["t"], s["procs"][name]) for s in samples if name in s["procs"]]
    after = [m for t, m in rows if t >= warmup_s]
    window = max(MIN_WINDOW, len(after) // 4)
    if len(after) < 2 * window:  # too short a life after the warm-up to judge
        return {"samples": len(rows), "judged": False}
    first, last = after[:window], after[-window:]

    def growth(key: str) -> int:
        return int(min(m[key] for m in last) - min(m[key] for m in first))

    def mib(kib: float) -> float:
        return round(kib / 1024, 1)

    leaders = {m.get("leader") for _, m in rows} - {None}
    return {
        "samples": len(rows),
        "judged": True,
        "window": window,
        "fd_start": after[0]["fds"],
        "fd_end": after[-1]["fds"],
        "fd_max": max(m["fds"] for _, m in rows),
        "fd_growth": growth("fds"),
        "files_start": after[0]["files"],
        "files_end": after[-1]["files"],
        "files_growth": growth("files"),
        "orphans_max": max(m["orphans"] for _, m in rows),
        "stale_start": after[0]["stale_orphans"],
        "stale_end": after[-1]["stale_orphans"],
        "stale_max": max(m["stale_orphans"] for _, m in rows),
        "stale_growth": after[-1]["stale_orphans"] - after[0]["stale_orphans"],
        "rss_start_mib": mib(after[0]["rss_kib"]),
        "rss_end_mib": mib(after[-1]["rss_kib"]),
        "rss_max_mib": mib(max(m["rss_kib"] for _, m in rows)),
        "rss_growth_mib": mib(growth("rss_kib")),
        "restarted": len(leaders) > 1,  # a dev server whose launcher changed
    }


def verdicts(
    traffic: Mapping[str, Any],
    updates: Mapping[str, Any],
    procs: Mapping[str, Mapping[str, Any]],
    kinds: Mapping[str, str],
    fd_tolerance: int = FD_TOLERANCE,
) -> list[dict[str, Any]]:
    """One row per goal: metric, value, goal, verdict (`ok`, `MISS`, or `-` unjudged)."""
    rows: list[dict[str, Any]] = [
        _row("errors", traffic["errors_total"], "0", traffic["errors_total"] == 0),
        _row(
            "missed updates",
            f"{updates['missed']} of {updates['pushed']}",
            "0",
            updates["missed"] == 0 if updates["pushed"] else None,
        ),
    ]
    limit = f"<= +{fd_tolerance}"
    for name, st in procs.items():
        kind = kinds.get(name, "?")
        if not st.get("judged"):
            rows.append(_row(f"{name} FDs", "too few samples", limit, None))
            continue
        flat = st["files_growth"] <= fd_tolerance
        value, goal = f"files {st['files_growth']:+d}", limit
        if kind in ORPHANS_JUDGED:
            flat = flat and st["stale_growth"] <= ORPHAN_TOLERANCE
            value += f", stale orphans {st['stale_growth']:+d}"
            goal = f"{limit}, <= +{ORPHAN_TOLERANCE}"
        value += f" (all FDs {st['fd_growth']:+d})"
        rows.append(_row(f"{name} FDs", value, goal, flat))
        if kind in RSS_GOAL_MIB:
            most, growth = RSS_GOAL_MIB[kind], st["rss_growth_mib"]
            rows.append(
                _row(f"{name} RSS", f"{growth:+.1f} MiB", f"<= {most:g} MiB", growth <= most)
            )
        if st.get("restarted"):
            rows.append(_row(f"{name} restarts", "its dev server restarted", "none", False))
    return rows


def _row(metric: str, value: object, goal: str, ok: bool | None) -> dict[str, Any]:
    verdict = "-" if ok is None else ("ok" if ok else "MISS")
    return {"metric": metric, "value": value, "goal": goal, "verdict": verdict}


def passed(rows: Sequence[Mapping[str, Any]]) -> bool:
    """Every goal judged and met (an unjudged one, too short a run, is not a pass)."""
    return all(r["verdict"] == "ok" for r in rows)
