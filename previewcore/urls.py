"""The URL scheme router and node share (CONTRACT §2): what each path means (pure).

    /healthz /readyz /metrics       answered by the process itself
    /preview/{id}/...               the session's dev server (path mode)
    /kontext/preview[/{id}[/...]]   the API
    {id}.{preview-domain}/...       the session's dev server, every path (subdomain mode)

In path mode a page's root-absolute URL (`/src/main.jsx`) carries no session; its
Referer does, and both sides bounce such a request back under `/preview/{id}/` (307).
In subdomain mode each session is its own web origin and needs no bounce.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from previewcore.session_id import is_encoded, is_valid_hashed_id
from proxycore.errors import NotFound

LOCAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def host_session(host: bytes | None, domain: str | None) -> str | None:
    """The session a `Host` header names in subdomain mode (`{id}.{domain}[:port]`).

    Only one label under the domain, and only what an ID may be: anything else (the API
    host, `a.b.{domain}`, a bare domain) is not a preview host."""
    if not domain or not host:
        return None
    name = host.decode("latin-1").lower()
    if name.startswith("["):
        return None  # an IPv6 literal is never a preview host
    name = name.partition(":")[0].rstrip(".")
    label, dot, rest = name.partition(".")
    if not dot or rest != domain or not label:
        return None
    return label if (is_encoded(label) or is_dns_label(label)) else None


def subdomain_session(host: bytes | None, domain: str, path: str) -> str | None:
    """Subdomain mode, for both route functions: the session a preview host names, or None
    on the API host, where preview paths are refused (serving them there would put every
    preview on one origin again)."""
    sid = host_session(host, domain)
    if sid is None and path.startswith("/preview/"):
        raise NotFound(f"previews are served at their own origin, {{id}}.{domain}")
    return sid


def is_dns_label(session_id: str) -> bool:
    """A client-chosen ID usable as a host label: browsers lower-case host names."""
    return bool(_DNS_LABEL_RE.match(session_id)) and is_valid_hashed_id(session_id)


def preview_path(session_id: str) -> str:
    return f"/preview/{session_id}/"


def referer_session(referer: str | None) -> str | None:
    """The session a page lives in, from its Referer (`.../preview/{id}/...`)."""
    if not referer:
        return None
    path = urlsplit(referer).path if "://" in referer else referer
    parts = path.split("/", 3)
    if len(parts) >= 4 and parts[0] == "" and parts[1] == "preview" and parts[2]:
        sid = parts[2]
        if is_encoded(sid) or is_valid_hashed_id(sid):
            return sid
    return None
