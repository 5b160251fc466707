"""API bearer tokens: the token file's format and the constant-time check (CONTRACT §2)."""

from __future__ import annotations

import hmac

from previewcore.errors import Unauthorized
from previewcore.session_id import secret_lines


def parse_tokens(text: str, source: str = "") -> tuple[bytes, ...]:
    """Tokens are lines, like secrets; a file without one is a configuration error."""
    tokens = secret_lines(text)
    if not tokens:
        raise ValueError(f"{source}: no API token in file")
    return tokens


def check_token(authorization: bytes | None, tokens: tuple[bytes, ...]) -> bool:
    """`Authorization: Bearer T` for any configured T, compared in constant time across all."""
    if not authorization or authorization[:7].lower() != b"bearer ":
        return False
    given = authorization[7:].strip()
    ok = False
    for token in tokens:
        ok |= hmac.compare_digest(given, token)
    return ok


def authorize(authorization: bytes | None, tokens: tuple[bytes, ...] | None) -> None:
    """Raise 401 unless tokens are off (`None`) or the request carries one of them."""
    if tokens is not None and not check_token(authorization, tokens):
        raise Unauthorized()
