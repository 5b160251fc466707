"""The routing decisions router and node share (pure): answered here, redirected, refused.

Each route function (`router.routing.route`, `previewnode.routes.route`) returns one
of these or one of its own (forward to a node, act on a session); `route_class` labels
the request in metrics and the access log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from proxycore.errors import NotFound

RouteClass = Literal["preview", "api", "create", "local", "redirect", "error"]


@dataclass(frozen=True, slots=True)
class Local:
    """Answered by the process itself: /healthz, /readyz, /metrics."""

    path: str
    route_class: RouteClass = "local"


@dataclass(frozen=True, slots=True)
class Redirect:
    """E.g. a Referer bounce: a page's root-absolute URL back under its session's prefix."""

    status: int
    location: str
    route_class: RouteClass = "redirect"


@dataclass(frozen=True, slots=True)
class Reject:
    error: Exception = field(default_factory=NotFound)
    route_class: RouteClass = "error"
