"""Signed session IDs: `{node}--{rand}{mac}` (CONTRACT §3).

An ID names the node that owns its session, so any router replica can send a
request straight to that node without asking anyone. The MAC stops a client
from steering traffic to a node of its choosing. Pure: no IO.

Never log a secret; `Keys.fingerprints` is what logs may show.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

SEPARATOR = "--"
RAND_BYTES = 16
RAND_CHARS = 26  # base32 of 16 bytes, unpadded
MAC_BYTES = 8
MAC_CHARS = 13  # base32 of 8 bytes, unpadded
MIN_SECRET_CHARS = 32

NODE_NAME_RE = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,18}[a-z0-9]$")
HASHED_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_B32_TAIL_RE = re.compile(rf"^[a-z2-7]{{{RAND_CHARS + MAC_CHARS}}}$")


class SecretError(ValueError):
    """The secret file is missing, empty or holds a secret that is too short."""


@dataclass(frozen=True)
class Keys:
    """The HMAC keys in force: the first signs, every one verifies."""

    secrets: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.secrets:
            raise SecretError("no secret: the secret file needs at least one line")
        for secret in self.secrets:
            if len(secret) < MIN_SECRET_CHARS:
                raise SecretError(
                    f"a secret of {len(secret)} characters is too short "
                    f"(at least {MIN_SECRET_CHARS}; fingerprint {fingerprint(secret)})"
                )

    @property
    def signing(self) -> bytes:
        return self.secrets[0]

    @property
    def fingerprints(self) -> list[str]:
        return [fingerprint(s) for s in self.secrets]


def fingerprint(secret: bytes) -> str:
    """A short, non-reversible name for a secret, safe to log."""
    return hashlib.sha256(b"preview-secret-fingerprint:" + secret).hexdigest()[:12]


def secret_lines(text: str) -> tuple[bytes, ...]:
    """The lines of a secret or token file: stripped, without blanks and `#` comments."""
    return tuple(
        stripped.encode()
        for line in text.splitlines()
        if (stripped := line.strip()) and not stripped.startswith("#")
    )


def parse_secrets(text: str) -> Keys:
    return Keys(secret_lines(text))


def is_valid_node_name(name: str) -> bool:
    return bool(NODE_NAME_RE.match(name))


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def mac_of(key: bytes, prefix: str) -> str:
    digest = hmac.new(key, prefix.encode("ascii"), hashlib.sha256).digest()
    return _b32(digest[:MAC_BYTES])


def mint(node: str, keys: Keys, rand: bytes | None = None) -> str:
    """A fresh ID owned by `node`, signed with the first secret."""
    if not is_valid_node_name(node):
        raise ValueError(
            f"invalid node name {node!r}: 3-20 of [a-z0-9-], no leading/trailing '-' or '--'"
        )
    prefix = f"{node}{SEPARATOR}{_b32(rand if rand is not None else os.urandom(RAND_BYTES))}"
    return prefix + mac_of(keys.signing, prefix)


def is_encoded(session_id: str) -> bool:
    """IDs containing `--` are always treated as encoded (CONTRACT §3)."""
    return SEPARATOR in session_id


def verify(session_id: str, keys: Keys) -> str | None:
    """The owning node's name if `session_id` is well formed and signed by any key, else None.

    The comparison runs in constant time per key, and every key is tried, so the
    time taken does not tell which key or how many characters matched.
    """
    node, sep, tail = session_id.partition(SEPARATOR)
    if not sep or not is_valid_node_name(node) or not _B32_TAIL_RE.match(tail):
        return None
    prefix = session_id[: len(node) + len(SEPARATOR) + RAND_CHARS]
    given = tail[RAND_CHARS:].encode("ascii")
    ok = False
    for key in keys.secrets:
        ok |= hmac.compare_digest(mac_of(key, prefix).encode("ascii"), given)
    return node if ok else None


def is_valid_hashed_id(session_id: str) -> bool:
    """A client-chosen ID: routed by hashing, never containing the separator."""
    return bool(HASHED_ID_RE.match(session_id)) and not is_encoded(session_id)


def placement_token(session_id: str, keys: Keys) -> str:
    """What a router adds to a create it forwards with a client-chosen ID.

    A node refuses client-chosen IDs on node-local creation (CONTRACT §2: only
    the ring may place them); this token proves the ring placed this one.
    """
    return mac_of(keys.signing, "placement:" + session_id)


def verify_placement(session_id: str, token: str, keys: Keys) -> bool:
    ok = False
    for key in keys.secrets:
        ok |= hmac.compare_digest(mac_of(key, "placement:" + session_id).encode(), token.encode())
    return ok
