"""A request target reduced to the path and query that decide its route (pure).

What is routed must be exactly what is forwarded: anything a later normalization
could turn into another route (dot segments, encoded `/`, `\\` or `.`, control
characters) is refused here. An absolute-form target is reduced to its path; its
authority, like the Host header, never decides where a request goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from proxycore.errors import BadRequest

_BAD_ESCAPE_RE = re.compile(r"%(2[eEfF]|5[cC]|[01][0-9a-fA-F]|7[fF])")
_CONTROL_RE = re.compile(r"[\x00-\x20\x7f\\]")


@dataclass(frozen=True, slots=True)
class Target:
    path: str
    query: str  # without the '?', '' when absent

    @property
    def suffix(self) -> str:
        return "?" + self.query if self.query else ""


def split_target(raw: str) -> Target:
    """Origin-form path and query of a request target, refusing anything ambiguous."""
    if raw.startswith("/"):
        path, _, query = raw.partition("?")
    elif raw.startswith(("http://", "https://")):
        parts = urlsplit(raw)
        path, query = parts.path or "/", parts.query
    else:
        raise BadRequest("request target must be a path")
    # The cheap `in` tests first: this runs for every request (3% of the router's CPU
    # with generator-based checks), and most paths hold no `%` and no `/.`.
    if _CONTROL_RE.search(path) or ("%" in path and _BAD_ESCAPE_RE.search(path)):
        raise BadRequest("control characters, '\\' or encoded '/', '\\', '.' in the path")
    # Every path here starts with `/`, so a dot segment always follows one.
    if "/." in path and any(seg in (".", "..") for seg in path.split("/")):
        raise BadRequest("dot segments in the path")
    if query and ("\x00" in query or "\r" in query or "\n" in query):
        raise BadRequest("control characters in the query")
    return Target(path, query)
