"""Prometheus metrics of the router (and the proxy core the node shares).

With `--workers N` every worker writes to a shared directory in
prometheus-client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set by the
parent before any worker imports this module) and `/metrics` aggregates them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
_LIVE = {"multiprocess_mode": "livesum"} if MULTIPROC else {}
_MAX = {"multiprocess_mode": "max"} if MULTIPROC else {}

REQUESTS = Counter(
    "preview_router_requests_total",
    "Requests answered, by route class and status",
    ["route", "status"],
)
LATENCY = Histogram(
    "preview_router_request_seconds",
    "Time from request head to end of response (tunnels: to the 101)",
    ["route"],
    buckets=(
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        30,
        60,
    ),
)
UPSTREAM_ERRORS = Counter(
    "preview_router_upstream_errors_total",
    "Failures reaching a node, by node and kind",
    ["node", "kind"],
)
OPEN_WEBSOCKETS = Gauge(
    "preview_router_open_websockets",
    "Open WebSocket tunnels, by node",
    ["node"],
    **_LIVE,  # type: ignore[arg-type]
)
RING_NODES = Gauge("preview_router_ring_nodes", "Nodes in the ring, by state", ["state"], **_MAX)  # type: ignore[arg-type]
RING_RELOADS = Counter(
    "preview_router_ring_reloads_total", "Ring/secret file reloads, by result", ["result"]
)
OPEN_CONNECTIONS = Gauge(
    "preview_router_open_connections",
    "Open client connections",
    **_LIVE,  # type: ignore[arg-type]
)


def render() -> tuple[bytes, bytes]:
    """(content type, body) of the metrics page, aggregated across workers when needed."""
    if MULTIPROC:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return CONTENT_TYPE_LATEST.encode(), generate_latest(registry)
    return CONTENT_TYPE_LATEST.encode(), generate_latest(DEFAULT_REGISTRY)
