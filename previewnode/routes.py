"""Request target -> what the node does with it (pure; no sessions, no sockets).

The node's twin of `router.routing`: the same URL scheme (`previewcore.urls`), the
same target checks (`proxycore.target`), but where the router picks a node this
names an action on one of this node's sessions. Whether the session exists, and
what a missing one answers (404, 410, or 404 with the unknown-session mark), is the
app's business, not the route's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from previewcore.decisions import Local, Redirect, Reject, RouteClass
from previewcore.urls import LOCAL_PATHS, referer_session, subdomain_session
from proxycore.errors import BadRequest, NotFound
from proxycore.target import Target, split_target

ApiAction = Literal[
    "create",
    "list",
    "get",
    "extend",
    "delete",
    "put_files",
    "get_files",
    "token",
    "events",
    "check",
]

# (tail after the ID, method) -> action; the tail is None for /kontext/preview/{id}.
_SESSION_ACTIONS: dict[tuple[str | None, str], ApiAction] = {
    (None, "GET"): "get",
    (None, "PATCH"): "extend",
    (None, "DELETE"): "delete",
    ("files", "PUT"): "put_files",
    ("files", "GET"): "get_files",
    ("token", "POST"): "token",
    ("events", "GET"): "events",
    ("check", "POST"): "check",
}


@dataclass(frozen=True, slots=True)
class SessionRedirect:
    """`/preview/{id}` without the slash: 308 to `/preview/{id}/`, once the ID resolves."""

    session_id: str
    suffix: str
    route_class: RouteClass = "redirect"


@dataclass(frozen=True, slots=True)
class Preview:
    """A request for the session's dev server (HTTP or the HMR WebSocket)."""

    session_id: str
    route_class: RouteClass = "preview"


@dataclass(frozen=True, slots=True)
class Api:
    action: ApiAction
    session_id: str | None = None  # None for create and list
    wait_ready: bool = False  # create with `?wait=ready`
    route_class: RouteClass = "api"


Decision = Local | Redirect | SessionRedirect | Preview | Api | Reject


def route(
    method: str,
    raw_target: str,
    referer: str | None,
    *,
    host: bytes | None = None,
    preview_domain: str | None = None,
) -> Decision:
    """Where a request goes on this node. Raises nothing: errors come back as `Reject`.

    In subdomain mode a Host of `{id}.{domain}` makes every path the app's (its own
    `/kontext/...` or `/healthz` included); other hosts get the API and local paths."""
    try:
        target = split_target(raw_target)
        if preview_domain is None:
            return _route(method, target, referer)
        sid = subdomain_session(host, preview_domain, target.path)
        return _route(method, target, None) if sid is None else Preview(sid)
    except (BadRequest, NotFound) as exc:
        return Reject(exc)


def _route(method: str, target: Target, referer: str | None) -> Decision:
    path = target.path
    if path in LOCAL_PATHS:
        return Local(path)
    parts = path.split("/", 4)  # '', first, id, rest...
    first = parts[1] if len(parts) > 1 else ""
    if first == "preview" and len(parts) >= 3 and parts[2]:
        if len(parts) == 3:
            return SessionRedirect(parts[2], target.suffix)
        return Preview(parts[2])
    if first == "kontext" and len(parts) >= 3 and parts[2] == "preview":
        return _api(method, parts[3:], target.query)
    page_sid = referer_session(referer)
    if page_sid is not None:
        return Redirect(307, f"/preview/{page_sid}{path}{target.suffix}")
    raise NotFound()


def _api(method: str, rest: list[str], query: str) -> Api:
    if not rest or rest == [""]:
        if method == "POST":
            return Api("create", wait_ready="wait=ready" in query.split("&"))
        if method == "GET":
            return Api("list")
        raise NotFound()
    tail = rest[1] if len(rest) > 1 else None
    action = _SESSION_ACTIONS.get((tail, method))
    if action is None:
        raise NotFound()
    return Api(action, rest[0])
