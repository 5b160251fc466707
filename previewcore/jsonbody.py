"""API bodies: JSON only, decoded into typed structs, nested no deeper than a fixed bound.

Why `application/json` only: a web page can make a browser send a cross-site form
(`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`) without any
CORS check; it cannot send `application/json` cross-site without a preflight. So a body
of any other type is refused (415) before it is parsed. Why a depth bound: the decoder
recurses, and a 1,000-level `packageJson` must be a 400, not a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from previewcore.errors import InvalidContent, UnsupportedMediaType
from proxycore.errors import BadRequest

MAX_DEPTH = 64
T = TypeVar("T")


def require_json(content_type: bytes | None) -> None:
    media = (content_type or b"").split(b";", 1)[0].strip().lower()
    if media != b"application/json":
        raise UnsupportedMediaType(
            f"API bodies must be application/json, not {media.decode('latin-1')[:60] or 'none'}"
        )


def decode(body: bytes, kind: type[T]) -> T:
    """`body` as `kind`: 400 for invalid or too deeply nested JSON, 422 for a wrong shape."""
    try:
        value = msgspec.json.decode(body, type=kind)
    except RecursionError:
        raise BadRequest(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except msgspec.ValidationError as exc:
        raise InvalidContent(f"invalid body: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from exc
    # Typed fields nest a known, small amount; only free-form ones (`packageJson`) can go deep.
    fields = getattr(value, "__struct_fields__", ())
    if any(depth(getattr(value, f)) >= MAX_DEPTH for f in fields):
        raise BadRequest(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a decoded value (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level + 1) for child in children)
    return deepest
