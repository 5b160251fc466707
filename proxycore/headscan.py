"""The request head, parsed strictly in one pass (pure: bytes in, a head or an exception out).

A proxy that forwards what a lenient parser accepted is the classic request-smuggling
setup, and h11 0.16 is lenient where a proxy must not be: it lets `Transfer-Encoding`
win over `Content-Length`, accepts bare LF and obs-fold, and has one size limit for
the request line and headers together. So the head is parsed here, once, with the
rules of RFC 9112 and nothing looser: every head h11 refuses is refused here too, and
on every head both accept they agree (`tests/unit/test_request_oracle.py` holds h11
as the oracle). Parsing it a second time with h11 cost more than all of these checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxycore.errors import (
    HeadersTooLarge,
    MalformedHTTP,
    NotImplementedCoding,
    URITooLong,
    VersionNotSupported,
)
from proxycore.http1 import (
    CONTROL_CHARS,
    TOKEN_CHARS,
    ProtocolError,
    bare_line_ending,
    parse_fields,
)

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BLOCK = 64 * 1024
# The most bytes a complete head can take.
MAX_HEAD = MAX_REQUEST_LINE + MAX_HEADER_BLOCK + 4
_KNOWN_CODINGS = {b"chunked", b"gzip", b"deflate", b"compress", b"identity", b"x-gzip"}

# `method SP request-target SP HTTP-version`, h11's grammar: a token, then visible ASCII.
_REQUEST_LINE = re.compile(rb"([-!#$%&'*+.^_`|~0-9a-zA-Z]+) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])")


@dataclass(frozen=True, slots=True)
class HeadInfo:
    length: int  # bytes of the head including the final CRLFCRLF
    content_length: int | None
    chunked: bool
    method: bytes
    target: bytes
    http_version: bytes  # b"1.1" or b"1.0"
    headers: list[tuple[bytes, bytes]]  # names lower-cased, values OWS-stripped, in order
    expects_continue: bool  # HTTP/1.1 `Expect: 100-continue`


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
    """Parse a complete head (ending in CRLFCRLF): sizes, syntax, framing headers, Host."""
    body = head[:-4]
    if bare_line_ending(body):
        raise MalformedHTTP("bare CR or LF line ending")
    lines = body.split(b"\r\n")
    if not lines[0]:
        # RFC 9112 §2.2 lets a server skip empty lines before a request; h11 refuses them,
        # and so do we: never looser than the reference parser.
        raise MalformedHTTP("empty line before the request line")
    first = lines[0]
    if len(first) > MAX_REQUEST_LINE:
        raise URITooLong()
    version = first.rpartition(b" ")[2]
    if version.startswith(b"HTTP/") and version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise VersionNotSupported()  # `HTTP/2.0` would otherwise be spoken to in 1.1
    if len(body) - len(first) > MAX_HEADER_BLOCK:
        raise HeadersTooLarge()
    request_line = _REQUEST_LINE.fullmatch(first)
    if request_line is None:
        raise MalformedHTTP("malformed request line")
    if CONTROL_CHARS.search(body) is not None:
        raise MalformedHTTP("control character in request head")
    method, target, http_version = request_line.groups()
    if b"\r\n " in body or b"\r\n\t" in body:
        raise MalformedHTTP("obsolete line folding")
    try:
        headers = parse_fields(lines[1:])  # the same field grammar as upstream answers
    except ProtocolError as exc:
        raise MalformedHTTP(str(exc)) from exc
    content_lengths: set[bytes] = set()
    codings: list[bytes] = []
    te_seen = False
    hosts = 0
    expects_continue = False
    for lname, value in headers:
        if lname == b"content-length":
            for part in value.split(b","):
                v = part.strip()
                if not v.isdigit() or len(v) > 18:
                    raise MalformedHTTP("invalid Content-Length")
                # Equal as written, not as numbers: `05` and `5` are two framings to h11
                # (and to whoever parses after us), so they are refused, not merged.
                content_lengths.add(v)
        elif lname == b"transfer-encoding":
            te_seen = True
            codings.extend(c.strip(b" \t").lower() for c in value.split(b","))
        elif lname == b"host":
            hosts += 1
        elif lname == b"expect":
            expects_continue = value.lower() == b"100-continue"
    if hosts > 1:
        raise MalformedHTTP("more than one Host header")
    if hosts == 0 and http_version == b"1.1":
        raise MalformedHTTP("missing Host header")
    if te_seen and content_lengths:
        raise MalformedHTTP("both Content-Length and Transfer-Encoding")
    if len(content_lengths) > 1:
        raise MalformedHTTP("differing Content-Length values")
    if te_seen and codings != [b"chunked"]:
        if any(not c or not TOKEN_CHARS.issuperset(c) for c in codings):
            raise MalformedHTTP("obfuscated Transfer-Encoding")
        if any(c not in _KNOWN_CODINGS for c in codings):
            raise NotImplementedCoding()
        raise MalformedHTTP("only a single 'chunked' transfer coding is accepted")
    cl = int(next(iter(content_lengths))) if content_lengths else None
    return HeadInfo(
        len(head),
        cl,
        te_seen,
        method,
        target,
        http_version,
        headers,
        expects_continue and http_version == b"1.1",
    )
