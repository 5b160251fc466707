"""Request target -> routing decision (pure; no sockets, no clock).

The decision is made on the raw path after `split_target` refused anything a later
normalization could turn into another route, so `/preview/x/../../kontext/...` can
never reach an API it was not routed to. The Host header never decides where a
request goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from previewcore.decisions import Local, Redirect, Reject, RouteClass
from previewcore.errors import UnknownSession
from previewcore.session_id import Keys, is_encoded, is_valid_hashed_id, verify
from previewcore.urls import LOCAL_PATHS, referer_session, subdomain_session
from proxycore.errors import BadRequest, NotFound, OverCapacity
from proxycore.target import Target, split_target
from router.ring import Node, Ring

FALLBACK_SUCCESSORS = 2


@dataclass(frozen=True, slots=True)
class Forward:
    """Send to `nodes[0]`; on the unknown-session marker try the rest (hashed IDs only)."""

    session_id: str
    nodes: tuple[Node, ...]
    route_class: RouteClass
    encoded: bool


@dataclass(frozen=True, slots=True)
class Create:
    route_class: RouteClass = "create"


@dataclass(frozen=True, slots=True)
class Preflight:
    """A CORS preflight for the API: answered by the router from `--api-cors-origins`."""

    route_class: RouteClass = "api"


Decision = Local | Redirect | Forward | Create | Preflight | Reject


# A verified (ID, keys) pair stays verified: cache it; new keys make new cache entries.
_verify_cached = lru_cache(maxsize=65536)(verify)


def session_nodes(session_id: str, ring: Ring, keys: Keys) -> tuple[tuple[Node, ...], bool]:
    """Nodes to try for a session ID, and whether the ID is encoded."""
    if is_encoded(session_id):
        owner = _verify_cached(session_id, keys)
        node = ring.get(owner) if owner else None
        if node is None:
            raise UnknownSession()
        return (node,), True
    if not is_valid_hashed_id(session_id):
        raise BadRequest("malformed session ID")
    nodes = tuple(ring.route(session_id, 1 + FALLBACK_SUCCESSORS))
    if not nodes:
        raise OverCapacity("no nodes in the ring")
    return nodes, False


def route(
    method: str,
    raw_target: str,
    referer: str | None,
    ring: Ring,
    keys: Keys,
    *,
    host: bytes | None = None,
    preview_domain: str | None = None,
) -> Decision:
    """Where a request goes. Raises nothing: errors come back as `Reject`.

    In subdomain mode (`preview_domain`) a Host of `{id}.{domain}` makes every path a
    preview request of that session; on any other host only the API and the local
    paths are served, never a preview (that would be one origin for all again)."""
    try:
        target = split_target(raw_target)
        if preview_domain is None:
            return _route(method, target, referer, ring, keys)
        sid = subdomain_session(host, preview_domain, target.path)
        if sid is None:
            return _route(method, target, None, ring, keys)
        nodes, encoded = session_nodes(sid, ring, keys)
        return Forward(sid, nodes, "preview", encoded)
    except (BadRequest, NotFound, UnknownSession, OverCapacity) as exc:
        return Reject(exc)


def _route(method: str, target: Target, referer: str | None, ring: Ring, keys: Keys) -> Decision:
    path = target.path
    if path in LOCAL_PATHS:
        return Local(path)
    parts = path.split("/", 4)  # '', first, id, rest...
    first = parts[1] if len(parts) > 1 else ""
    if first == "kontext" and method == "OPTIONS":
        return Preflight()
    if first == "preview" and len(parts) >= 3 and parts[2]:
        sid = parts[2]
        if len(parts) == 3:
            session_nodes(sid, ring, keys)  # an unknown ID gets its 404 here, not a redirect
            return Redirect(308, f"/preview/{sid}/{target.suffix}")
        nodes, encoded = session_nodes(sid, ring, keys)
        return Forward(sid, nodes, "preview", encoded)
    if first == "kontext":
        if len(parts) < 3 or parts[2] != "preview":
            raise NotFound()
        rest = parts[3:]
        if not rest or rest == [""]:
            if method == "POST":
                return Create()
            raise NotFound("the session list is only served by each node")
        sid = rest[0]
        tail = rest[1] if len(rest) > 1 else None
        if tail not in (None, "files", "token", "events", "check"):
            raise NotFound()
        nodes, encoded = session_nodes(sid, ring, keys)
        return Forward(sid, nodes, "api", encoded)
    page_sid = referer_session(referer)
    if page_sid is not None:
        return Redirect(307, f"/preview/{page_sid}{path}{target.suffix}")
    raise NotFound()
