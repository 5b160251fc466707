"""The request parser against h11 as the oracle (issue 13: a strict parser, h11 kept as reference).

Generated heads mix valid parts with the shapes smuggling and parser bugs are made
of: stray whitespace, control bytes, obs-text, bare CR/LF, folding, odd versions,
duplicated framing and Host headers. For each head:
- h11 refuses it -> `scan_head` refuses it too (we are never looser);
- `scan_head` accepts it -> h11 accepts it, with the same method, target, version
  and headers (names lower-cased, values stripped) and the same framing.
`scan_head` may refuse heads h11 accepts (it is stricter on purpose: CL+TE, bare LF,
obs-fold, control bytes, duplicate Content-Length values...).
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxycore.errors import PreviewError
from proxycore.headscan import HeadInfo, scan_head


def _mostly(good: list[bytes], odd: list[bytes], random: int = 0) -> st.SearchStrategy[bytes]:
    """Usually (7 in 8) a well-formed part, so that many heads are valid; else an odd one."""

    @st.composite
    def part(draw: st.DrawFn) -> bytes:
        roll = draw(st.integers(0, 7))
        if roll < 7:
            return draw(st.sampled_from(good))
        if random and draw(st.booleans()):
            return draw(st.binary(min_size=0, max_size=random))
        return draw(st.sampled_from(odd))

    return part()


_METHODS = _mostly([b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS"], [b"G@T", b"", b"get", b"G T"])
_TARGETS = _mostly(
    [b"/", b"/preview/a--b/x?y=1", b"*", b"http://h/p", b"/%2e%2e/", b"/\xc3"],
    [b"/a b", b"/\x7f", b"/\x01", b"", b"/\t"],
    random=6,
)
_VERSIONS = _mostly(
    [b"HTTP/1.1", b"HTTP/1.0"], [b"HTTP/2.0", b"HTTP/1.x", b"http/1.1", b"HTTP/11", b"HTTP/0.9"]
)
_SEPS = _mostly([b" "], [b"  ", b"\t", b""])
_NAMES = _mostly(
    [b"Content-Length", b"Transfer-Encoding", b"Expect", b"X-A", b"Connection", b"host"],
    [b"X A", b"X-A ", b"", b"X\x00", b"X\xff", b"Host"],
    random=4,
)
_VALUES = _mostly(
    [b"x", b" x ", b"5", b"05", b"5, 5", b"chunked", b"100-continue", b"a\tb", b"\xff\xfe", b""],
    [b"-1", b"gzip, chunked", b"5, 6", b"a\x01b", b"a\x7fb", b"\x00", b"chunked, chunked"],
    random=6,
)
_COLONS = _mostly([b":", b": "], [b" :", b"", b"::"])
_EOLS = _mostly([b"\r\n"], [b"\n", b"\r", b"\r\n ", b"\r\n\t"])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    line = draw(_METHODS) + draw(_SEPS) + draw(_TARGETS) + draw(_SEPS) + draw(_VERSIONS)
    parts = [draw(st.sampled_from([b""] * 7 + [b"\r\n"])) + line]
    if draw(st.integers(0, 7)):
        parts.append(b"\r\nHost: h")
    for _ in range(draw(st.integers(0, 4))):
        parts.append(draw(_EOLS) + draw(_NAMES) + draw(_COLONS) + draw(_VALUES))
    return b"".join(parts) + b"\r\n\r\n"


def _h11(head: bytes) -> h11.Request | None:
    conn = h11.Connection(h11.SERVER)
    try:
        conn.receive_data(head)
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    return event if isinstance(event, h11.Request) else None


def _ours(head: bytes) -> HeadInfo | None:
    try:
        return scan_head(head)
    except PreviewError:
        return None


def _unframed(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k not in (b"content-length", b"transfer-encoding")]


def _check(head: bytes) -> str:
    """Compare both parsers on one head; returns which case it was."""
    theirs, ours = _h11(head), _ours(head)
    if theirs is None:
        assert ours is None, f"h11 refuses but we accept {head!r}"
        return "both refuse"
    if ours is None:
        return "stricter"
    assert ours.method == theirs.method
    assert ours.target == theirs.target
    assert ours.http_version == theirs.http_version
    # h11 folds equal Content-Length values into one header and lower-cases `chunked`;
    # the proxy rebuilds both framing headers from the framing anyway, so compare that.
    theirs_headers = [(k.lower(), v) for k, v in theirs.headers.raw_items()]
    assert _unframed(ours.headers) == _unframed(theirs_headers)
    assert ours.chunked == any(k == b"transfer-encoding" for k, _ in theirs_headers)
    lengths = {v for k, v in theirs_headers if k == b"content-length"}
    assert ours.content_length == (int(next(iter(lengths))) if lengths else None)
    return "both accept"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heads())
@example(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
@example(b"GET / HTTP/1.1\r\n\r\n")  # no Host on 1.1: both refuse
@example(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")  # two Hosts: both refuse
@example(b"GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: x\r\nX-A:\xff\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length:05\r\nContent-Length:5\r\n\r\n")
def test_never_looser_than_h11_and_agrees_where_both_accept(head: bytes) -> None:
    _check(head)


TABLE = [
    (b"GET /p?q HTTP/1.1\r\nHost: h\r\nX-A:  v \t\r\n\r\n", "both accept"),
    (b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n", "both accept"),
    (b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", "both accept"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n folded\r\n\r\n", "stricter"),
    (
        b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "stricter",
    ),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n", "stricter"),
    (b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "both refuse"),
    (b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", "both refuse"),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-A: \x00\r\n\r\n", "both refuse"),
]


@pytest.mark.parametrize(("head", "case"), TABLE)
def test_known_heads_fall_where_expected(head: bytes, case: str) -> None:
    """The generator's three cases each exist: both accept, we are stricter, both refuse."""
    assert _check(head) == case


def test_expect_continue_is_seen_on_http11_only() -> None:
    h = b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: 100-Continue\r\n\r\n"
    assert scan_head(h).expects_continue
    assert not scan_head(h.replace(b"HTTP/1.1", b"HTTP/1.0")).expects_continue
