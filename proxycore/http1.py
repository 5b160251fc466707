"""The client side of HTTP/1.1 towards an upstream: request heads out, responses in (pure).

Why not h11 here: on the proxied path h11's client state machine and event objects
cost about 37 µs per exchange (measured with timeit), as much as everything else the
router does for a request. Upstreams are our own nodes and Vite, but an answer is
still parsed strictly: anything malformed raises `ProtocolError` (the proxy's 502).

Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; `chunked` when it
is the final transfer coding; else `Content-Length`; else until the peer closes (the
connection is then not reused). One small reader per framing, as in h11's `_readers.py`;
`LengthBody` and `ChunkedBody` read request bodies from clients too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

Headers = list[tuple[bytes, bytes]]
MAX_HEAD = 256 * 1024
MAX_CHUNK_LINE = 4096
_STATUS_RE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: ([\t\x20-\x7e\x80-\xff]*))?")
TOKEN_CHARS = frozenset(
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_HEX = frozenset(b"0123456789abcdefABCDEF")


class ProtocolError(Exception):
    """The upstream's answer is not HTTP/1.1 we can relay."""


@dataclass(slots=True)
class ResponseHead:
    status: int
    reason: bytes
    headers: Headers  # names lower-cased, values stripped, in order
    http11: bool


@dataclass(slots=True)
class End:
    """End of a response body, with trailers when the body was chunked and had some."""

    trailers: Headers


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()
Event = ResponseHead | bytes | End | _NeedData


def serialize_head(method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """An HTTP/1.1 request head; names and values were validated where they came from."""
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def serialize_response_head(
    status: int, reason: bytes, headers: Sequence[tuple[bytes, bytes]]
) -> bytes:
    """An HTTP/1.1 response head; names and values are the caller's own or validated."""
    lines = [b"HTTP/1.1 %d " % status, reason, b"\r\n"]
    for name, value in headers:
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def encode_chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data) if data else b""


def last_chunk(trailers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    return b"0\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in trailers) + b"\r\n"


# Control characters a head may not hold (CR and LF only as CRLF, checked apart; HTAB allowed).
CONTROL_CHARS = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def bare_line_ending(block: bytes) -> bool:
    """A CR or LF that is not part of a CRLF (three C-level counts, no copies)."""
    pairs = block.count(b"\r\n")
    return block.count(b"\r") != pairs or block.count(b"\n") != pairs


def parse_fields(lines: list[bytes]) -> Headers:
    """Header lines of a block already checked for control characters and bare CR/LF:
    (lower-cased name, value without surrounding whitespace), in order."""
    headers: Headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or not TOKEN_CHARS.issuperset(name):
            raise ProtocolError(f"malformed header line {line[:60]!r}")
        headers.append((name.lower(), value.strip(b" \t")))
    return headers


def _parse_block(block: bytes) -> list[bytes]:
    if bare_line_ending(block):
        raise ProtocolError("bare CR or LF")
    if CONTROL_CHARS.search(block) is not None:
        raise ProtocolError("control character in a head")
    if b"\r\n " in block or b"\r\n\t" in block:
        raise ProtocolError("obsolete line folding")
    return block.split(b"\r\n")


def parse_head(block: bytes) -> ResponseHead:
    """A response head (without the final blank line)."""
    lines = _parse_block(block)
    m = _STATUS_RE.fullmatch(lines[0])
    if m is None:
        raise ProtocolError(f"malformed status line {lines[0][:80]!r}")
    return ResponseHead(
        int(m.group(2)), m.group(3) or b"", parse_fields(lines[1:]), m.group(1) == b"1"
    )


class _Done:
    """After the body (or for a response that has none): only `End`."""

    finished = True

    def next(self, buf: bytearray, eof: bool) -> Event:
        return End([])


_DONE = _Done()


class LengthBody:
    """`Content-Length: n`: exactly n bytes."""

    __slots__ = ("left",)

    def __init__(self, length: int) -> None:
        self.left = length

    @property
    def finished(self) -> bool:
        return self.left == 0

    def next(self, buf: bytearray, eof: bool) -> Event:
        if self.left == 0:
            return End([])
        if not buf:
            if eof:
                raise ProtocolError("connection closed inside a response body")
            return NEED_DATA
        n = min(self.left, len(buf))
        data = bytes(buf[:n])
        del buf[:n]
        self.left -= n
        return data


class _UntilClose:
    """No length and not chunked: the body is everything until the peer closes."""

    finished = False  # and never reusable: the peer closes to end it

    def next(self, buf: bytearray, eof: bool) -> Event:
        if buf:
            data = bytes(buf)
            buf.clear()
            return data
        return End([]) if eof else NEED_DATA


class ChunkedBody:
    """`Transfer-Encoding: chunked`: size lines, data and its CRLF, then trailers."""

    __slots__ = ("_left", "_step", "finished")

    def __init__(self) -> None:
        self._step = self._size_line
        self._left = 0  # bytes of the current chunk still to come
        self.finished = False

    def next(self, buf: bytearray, eof: bool) -> Event:
        if self.finished:
            return End([])
        while True:
            event = self._step(buf)
            if event is not None:
                if event is NEED_DATA and eof:
                    raise ProtocolError("connection closed inside a chunked body")
                return event

    def _size_line(self, buf: bytearray) -> Event | None:
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > MAX_CHUNK_LINE:
                raise ProtocolError("chunk size line too long")
            return NEED_DATA
        line = bytes(buf[:end]).split(b";", 1)[0].strip(b" \t")
        if not line or not _HEX.issuperset(line) or len(line) > 15:
            raise ProtocolError(f"bad chunk size {line[:20]!r}")
        del buf[: end + 2]
        self._left = int(line, 16)
        self._step = self._data if self._left else self._trailers
        return None

    def _data(self, buf: bytearray) -> Event | None:
        if not buf:
            return NEED_DATA
        n = min(self._left, len(buf))
        data = bytes(buf[:n])
        del buf[:n]
        self._left -= n
        if self._left == 0:
            self._step = self._data_end
        return data

    def _data_end(self, buf: bytearray) -> Event | None:
        if len(buf) < 2:
            return NEED_DATA
        if buf[:2] != b"\r\n":
            raise ProtocolError("missing CRLF after chunk data")
        del buf[:2]
        self._step = self._size_line
        return None

    def _trailers(self, buf: bytearray) -> Event | None:
        if buf.startswith(b"\r\n"):
            del buf[:2]
            return self._end([])
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                raise ProtocolError("trailers too large")
            return NEED_DATA
        trailers = parse_fields(_parse_block(bytes(buf[:end])))
        del buf[: end + 4]
        return self._end(trailers)

    def _end(self, trailers: Headers) -> End:
        self.finished = True
        return End(trailers)


Body = _Done | LengthBody | _UntilClose | ChunkedBody


class ResponseReader:
    """Incremental reader of one response at a time on a keep-alive connection.

    Reads a head, then hands the bytes to the one small reader its framing names
    (h11's `_readers.py` table is the model); `None` while a head is expected.
    """

    __slots__ = ("_body", "_buf", "_eof", "_head_request", "_switched", "keep_alive")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self.keep_alive = True
        self._switched = False
        self.expect_response(False)

    def expect_response(self, head_request: bool) -> None:
        """A request was sent: the next bytes are its response."""
        self._head_request = head_request
        self._body: Body | None = None

    @property
    def leftover(self) -> bytes:
        """Bytes received past what was parsed (after a 101: the new protocol's first bytes)."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        if data:
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Event:
        if self._switched:
            raise AssertionError("after a 101 the caller owns the bytes")
        if self._body is None:
            return self._head()
        return self._body.next(self._buf, self._eof)

    def _head(self) -> Event:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD:
                raise ProtocolError("response head too large")
            if self._eof:
                raise ProtocolError("connection closed before a complete response head")
            return NEED_DATA
        head = parse_head(bytes(self._buf[:end]))
        del self._buf[: end + 4]
        self._frame(head)
        return head

    def _frame(self, head: ResponseHead) -> None:
        # One pass over the headers for the three that frame the body (this runs for every
        # response: three comprehensions over them were 1.7% of the router's CPU).
        connection: list[bytes] = []
        codings: list[bytes] = []
        lengths: set[bytes] = set()
        for k, v in head.headers:
            if k == b"content-length":
                lengths.add(v)
            elif k == b"transfer-encoding":
                codings.extend(c.strip().lower() for c in v.split(b","))
            elif k == b"connection":
                connection.append(v)
        tokens = {t.strip() for t in b",".join(connection).lower().split(b",")}
        self.keep_alive = (b"close" not in tokens) if head.http11 else (b"keep-alive" in tokens)
        status = head.status
        if status == 101:
            self._switched, self.keep_alive = True, False
        elif 100 <= status < 200:
            self._body = None  # an interim answer: the real one follows
        elif self._head_request or status in (204, 304):
            self._body = _DONE
        else:
            self._body = self._framed_body(codings, lengths)

    def _framed_body(self, codings: list[bytes], lengths: set[bytes]) -> Body:
        if codings:
            if codings[-1] == b"chunked":
                return ChunkedBody()
            self.keep_alive = False
            return _UntilClose()
        if not lengths:
            self.keep_alive = False
            return _UntilClose()
        if len(lengths) != 1:
            raise ProtocolError("differing Content-Length values")
        value = next(iter(lengths))
        if not value.isdigit() or len(value) > 18:
            raise ProtocolError("invalid Content-Length")
        return LengthBody(int(value)) if int(value) else _DONE

    def unbuffered_length_left(self) -> int:
        """Bytes of a `Content-Length` body still to arrive, when none of it is buffered
        (else 0): what the caller may move past the parser (`proxycore.splice`)."""
        body = self._body
        if isinstance(body, LengthBody) and not self._buf:
            return body.left
        return 0

    def moved_past(self, n: int) -> None:
        """`n` bytes of the body went from socket to client without being fed here."""
        assert isinstance(self._body, LengthBody) and n <= self._body.left
        self._body.left -= n

    def reusable(self) -> bool:
        """The last response ended cleanly and the peer keeps the connection."""
        finished = self._body is not None and self._body.finished
        return finished and self.keep_alive and not self._eof and not self._buf
