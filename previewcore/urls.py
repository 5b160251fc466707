"""The URL scheme router and node share (CONTRACT §2): what each path means (pure).

    /healthz /readyz /metrics       answered by the process itself
    /preview/{id}/...               the session's dev server (path mode)
    /kontext/preview[/{id}[/files]] the API

A page's root-absolute URL (`/src/main.jsx`) carries no session; its Referer does,
and both sides bounce such a request back under `/preview/{id}/` (307).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from previewcore.session_id import is_encoded, is_valid_hashed_id

LOCAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


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
