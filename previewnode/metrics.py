"""Prometheus metrics of a node. Gauges that describe the sessions are computed at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_START_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)

SANDBOX = Gauge(
    "preview_node_sandbox",
    "1 for the mechanism dev servers run in: bwrap, landlock, or none (the fixed config, "
    "unsandboxed)",
    ["mechanism"],
)
CACHE_REMOVED = Counter(
    "preview_node_dependency_sets_removed_total",
    "Installed dependency sets removed by the cache collector (unused, or over the cap)",
)
LIMITS = Gauge(
    "preview_node_session_limits",
    "1 for how each dev server is bounded: cgroup-v1, cgroup-v2, or rlimit (no memory, "
    "process or CPU bound)",
    ["mechanism"],
)
REQUESTS = Counter(
    "preview_node_requests_total",
    "Requests answered, by route class and status",
    ["route", "status"],
)
VITE_STARTS = Counter("preview_node_vite_starts_total", "Vite dev servers started")
VITE_CRASHES = Counter(
    "preview_node_vite_crashes_total",
    "Vite dev servers that exited on their own or failed to start",
)
DISK_STOPS = Counter(
    "preview_node_session_disk_stops_total",
    "Dev servers stopped because their session's workspace and cache passed "
    "--session-disk-bytes (previewnode.supervisor)",
)
VITE_GAVE_UP = Counter(
    "preview_node_vite_gave_up_total",
    "Sessions marked failed because their dev server kept crashing (MAX_CRASHES within "
    "CRASH_WINDOW, previewnode.supervisor)",
)
VITE_START_SECONDS = Histogram(
    "preview_node_vite_start_seconds", "Spawn to serving", buckets=_START_BUCKETS
)
CREATE_TO_READY = Histogram(
    "preview_node_create_to_ready_seconds",
    "Session creation to Vite serving",
    buckets=_START_BUCKETS,
)
WARM_READY = Gauge(
    "preview_node_warm_sandboxes",
    "Dev servers started ahead of need and waiting for a session (--warm-sandboxes)",
)
WARM_STARTS = Counter(
    "preview_node_warm_starts_total",
    "Dev servers started by handing a session a warm sandbox (previewnode.warm)",
)
WAKES = Counter("preview_node_wakes_total", "Idle sessions woken by a request")
INSTALLS = Counter("preview_node_installs_total", "Dependency installs, by result", ["result"])
INSTALL_SECONDS = Histogram(
    "preview_node_install_seconds",
    "Dependency install duration",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600),
)
HELD = Counter(
    "preview_node_held_requests_total",
    "Preview requests held while Vite started, by outcome",
    ["outcome"],
)


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def with_descendants(roots: Iterable[int]) -> set[int]:
    """The processes under each root too: a dev server is a shell, bubblewrap and Vite,
    and Vite starts helpers of its own; its memory is all of theirs."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(children.get(pid, ()))
    return seen


class SessionCollector(Collector):
    """Sessions by status, running Vites and their total RSS, read when scraped."""

    def __init__(
        self, statuses: Callable[[], dict[str, int]], vite_pids: Callable[[], Iterable[int]]
    ) -> None:
        self.statuses = statuses
        self.vite_pids = vite_pids

    def collect(self) -> Iterable[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "preview_node_sessions", "Registered sessions by status", labels=["status"]
        )
        for status, count in self.statuses().items():
            by_status.add_metric([status], count)
        yield by_status
        pids = list(self.vite_pids())
        yield GaugeMetricFamily(
            "preview_node_running_vites", "Running Vite dev servers", value=len(pids)
        )
        yield GaugeMetricFamily(
            "preview_node_vite_rss_bytes",
            "Total RSS of running Vite dev servers (each with every process under it)",
            value=sum(_rss_kib(p) for p in with_descendants(pids)) * 1024,
        )


def install_collector(collector: SessionCollector) -> None:
    REGISTRY.register(collector)


def render() -> tuple[bytes, bytes]:
    return CONTENT_TYPE_LATEST.encode(), generate_latest(REGISTRY)
