"""Who may view a private preview: signed, expiring viewer tokens and their cookie (pure).

A token is `{expiry}.{mac}`, the MAC an HMAC of the session ID and the expiry with the
ID secret, so any router or node verifies it with no store, and a token of one session
never opens another. The router trades a token given once as `?preview_token=` for a
cookie; the node, which knows which sessions are private, checks that cookie (or the
token) on every request of a private session, WebSocket upgrades included.

Sibling preview hosts can set cookies for their parent domain, so several cookies of
the same name may arrive: each is checked, and only one bound to this session counts;
the one we set is host-only (no `Domain`). Never: log or echo a token.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, urlencode

from previewcore.session_id import Keys, mac_of

COOKIE = "preview_viewer"
QUERY = "preview_token"
MAX_TTL = 7 * 86400


def mint_token(session_id: str, expires_at: int, keys: Keys) -> str:
    return f"{expires_at}.{mac_of(keys.signing, _subject(session_id, expires_at))}"


def token_expiry(token: str) -> int | None:
    """The expiry a token names (unverified), or None if it is not `{digits}.{mac}`."""
    expiry, dot, _ = token.partition(".")
    if not dot or not expiry.isdigit() or len(expiry) > 12:
        return None
    return int(expiry)


def verify_token(session_id: str, token: str, keys: Keys, now: float) -> bool:
    """A token for this session, signed by any current secret, not yet expired."""
    expiry = token_expiry(token)
    if expiry is None or expiry <= now:
        return False
    mac = token.partition(".")[2]
    subject = _subject(session_id, expiry)
    ok = False
    for key in keys.secrets:
        ok |= hmac.compare_digest(mac_of(key, subject).encode(), mac.encode())
    return ok


def _subject(session_id: str, expires_at: int) -> str:
    return f"viewer:{session_id}:{expires_at}"


def cookie_values(cookie_header: bytes | None, name: str = COOKIE) -> list[str]:
    """Every value of cookie `name` in a Cookie header (there may be several)."""
    if not cookie_header:
        return []
    out = []
    for part in cookie_header.decode("latin-1").split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key == name:
            out.append(value.strip().strip('"'))
    return out


def cookie_allows(cookie_header: bytes | None, session_id: str, keys: Keys, now: float) -> bool:
    return any(verify_token(session_id, t, keys, now) for t in cookie_values(cookie_header))


def set_cookie(token: str, max_age: int, *, path: str, secure: bool) -> bytes:
    """A host-only cookie a third-party iframe keeps (`SameSite=None; Partitioned` need
    `Secure`, which browsers grant to https and to localhost); else `SameSite=Lax`."""
    attrs = [f"{COOKIE}={token}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly"]
    attrs += ["Secure", "SameSite=None", "Partitioned"] if secure else ["SameSite=Lax"]
    return "; ".join(attrs).encode()


def split_token(query: str) -> tuple[str | None, str]:
    """The `preview_token` of a query string, and the query without it."""
    pairs = parse_qsl(query, keep_blank_values=True)
    token = next((v for k, v in pairs if k == QUERY), None)
    rest = urlencode([(k, v) for k, v in pairs if k != QUERY])
    return token, rest
