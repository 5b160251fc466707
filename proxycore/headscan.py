"""Strict checks on a raw request head before h11 sees it.

h11 0.16 is lenient where a proxy must not be: it lets `Transfer-Encoding` win
over `Content-Length`, accepts bare LF and obs-fold, and has one size limit for
the request line and headers together. A proxy that forwards what a lenient
parser accepted is the classic request-smuggling setup, so every head passes
through `scan_head` first. Pure: bytes in, a verdict or an exception out.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxycore.errors import (
    HeadersTooLarge,
    MalformedHTTP,
    NotImplementedCoding,
    URITooLong,
    VersionNotSupported,
)

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BLOCK = 64 * 1024
# The most bytes a complete head can take: h11's own limit is set just above this.
MAX_HEAD = MAX_REQUEST_LINE + MAX_HEADER_BLOCK + 4
_KNOWN_CODINGS = {b"chunked", b"gzip", b"deflate", b"compress", b"identity", b"x-gzip"}
_TOKEN_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True, slots=True)
class HeadInfo:
    length: int  # bytes of the head including the final CRLFCRLF
    content_length: int | None
    chunked: bool


def find_head_end(buf: bytes | bytearray) -> int:
    """Index just past the head's blank line, or -1 while incomplete; raises on oversize."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        line_end = buf.find(b"\n")
        if (line_end < 0 and len(buf) > MAX_REQUEST_LINE) or line_end > MAX_REQUEST_LINE + 1:
            raise URITooLong()
        if len(buf) > MAX_HEAD:
            raise HeadersTooLarge()
        # A bare LF ending the head never shows CRLFCRLF: find it now, not at the size limit.
        if b"\n\n" in buf or b"\n\r\n" in buf:
            raise MalformedHTTP("bare LF line ending")
        return -1
    return end + 4


def scan_head(head: bytes) -> HeadInfo:
    """Validate a complete head (ending in CRLFCRLF): sizes, line endings, framing headers."""
    body = head[:-4]
    if b"\r" in body.replace(b"\r\n", b"") or b"\n" in body.replace(b"\r\n", b""):
        raise MalformedHTTP("bare CR or LF line ending")
    if b"\x00" in body:
        raise MalformedHTTP("NUL in request head")
    lines = body.split(b"\r\n")
    while lines and lines[0] == b"":
        # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
        lines.pop(0)
    if not lines:
        raise MalformedHTTP("empty request")
    if len(lines[0]) > MAX_REQUEST_LINE:
        raise URITooLong()
    version = lines[0].rpartition(b" ")[2]
    if version.startswith(b"HTTP/") and version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise VersionNotSupported()  # h11 would parse `HTTP/2.0` and we'd speak 1.1
    if len(body) - len(lines[0]) > MAX_HEADER_BLOCK:
        raise HeadersTooLarge()
    content_lengths: set[bytes] = set()
    codings: list[bytes] = []
    te_seen = False
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise MalformedHTTP("obsolete line folding")
        name, colon, value = line.partition(b":")
        if not colon or not name or not _TOKEN_CHARS.issuperset(name):
            raise MalformedHTTP("malformed header line")
        lname = name.lower()
        if lname == b"content-length":
            for part in value.split(b","):
                v = part.strip()
                if not v.isdigit() or len(v) > 18:
                    raise MalformedHTTP("invalid Content-Length")
                content_lengths.add(v.lstrip(b"0") or b"0")
        elif lname == b"transfer-encoding":
            te_seen = True
            codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
    if te_seen and content_lengths:
        raise MalformedHTTP("both Content-Length and Transfer-Encoding")
    if len(content_lengths) > 1:
        raise MalformedHTTP("differing Content-Length values")
    if te_seen:
        if codings != [b"chunked"]:
            if any(not c or not _TOKEN_CHARS.issuperset(c) for c in codings):
                raise MalformedHTTP("obfuscated Transfer-Encoding")
            if any(c not in _KNOWN_CODINGS for c in codings):
                raise NotImplementedCoding()
            raise MalformedHTTP("only a single 'chunked' transfer coding is accepted")
        return HeadInfo(len(head), None, True)
    cl = int(next(iter(content_lengths))) if content_lengths else None
    return HeadInfo(len(head), cl, False)
