"""Where the router's time goes, from sampled stacks (pyinstrument's session or py-spy's raw
output): inclusive share per category of busy time, and self time per module and function.

Pure: takes samples, returns a summary; running the profilers is `profile`'s job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# The router's own code moved into shared packages (proxycore: server, forward, headers,
# upstream, logs; previewcore: session IDs); a category names the module wherever it lives,
# so a profile of an older tree (everything under router/) is summarized the same way.
OURS = ("router", "proxycore", "previewcore")


def _ours(module: str) -> tuple[str, ...]:
    return tuple(f"/{pkg}/{module}" for pkg in OURS)


# (label, function names or None for any, path fragments): a sample counts toward a category
# when any frame on its stack matches, so nested calls are never double counted. Paths are
# "/" + the short path (`/h11/_connection.py`); the first entry is the idle wait.
CATEGORIES: list[tuple[str, frozenset[str] | None, tuple[str, ...]]] = [
    ("idle: epoll wait (trio get_events)", frozenset({"get_events"}), ("_io_epoll.py",)),
    ("h11 total (none since the own parser)", None, ("/h11/",)),
    ("h11 next_event (parse)", frozenset({"next_event"}), ("/h11/_connection.py",)),
    ("h11 send (serialize)", frozenset({"send", "send_with_data_passthrough"}),
     ("/h11/_connection.py",)),
    ("h11 event construction (Request/Response/Data)", None, ("/h11/_events.py",)),
    ("h11 header validation (normalize_and_validate)", frozenset({"normalize_and_validate"}),
     ("/h11/_headers.py",)),
    ("h11.Connection() per request", frozenset({"__init__"}), ("/h11/_connection.py",)),
    ("h11 start_next_cycle", frozenset({"start_next_cycle"}), ("/h11/_connection.py",)),
    ("sockio send_all (incl. the send syscall)", frozenset({"send_all"}), _ours("sockio.py")),
    ("sockio receive_some (incl. recv, waits)", frozenset({"receive_some"}), _ours("sockio.py")),
    ("http1 (response heads, body readers)", None, _ours("http1.py")),
    ("splice (large bodies in the kernel)", None, _ours("splice.py")),
    ("trio epoll registration", frozenset({"_update_registrations"}), ("/trio/_core/_io_epoll",)),
    ("trio SocketStream.send_all", frozenset({"send_all"}), ("/trio/_highlevel_socket.py",)),
    ("trio SocketStream.receive_some", frozenset({"receive_some"}),
     ("/trio/_highlevel_socket.py",)),
    ("trio timeouts (move_on_after/fail_after)", None, ("/trio/_timeouts.py",)),
    ("trio CancelScope enter/exit", frozenset({"__enter__", "__exit__", "_close"}),
     ("/trio/_core/_run.py",)),
    ("trio nursery (client watch task)", frozenset({"_watching_client"}), _ours("forward.py")),
    ("logging", None, ("/logging/",)),
    ("router/logs.py (access log)", None, _ours("logs.py")),
    ("metrics (prometheus_client)", None, ("/prometheus_client/",)),
    ("RouterApp._record (metrics+log)", frozenset({"_record", "finished"}), _ours("app.py")),
    ("routing.route (incl. ID verify)", frozenset({"route"}), _ours("routing.py")),
    ("session_id.verify (HMAC)", frozenset({"verify"}), _ours("session_id.py")),
    ("headers.py (rewrite, request id)", None, _ours("headers.py")),
    ("headscan.scan_head/find_head_end", None, _ours("headscan.py")),
    ("Exchange/ClientConnection __init__", frozenset({"__init__"}), _ours("server.py")),
    ("forward.build_request", frozenset({"build_request"}), _ours("forward.py")),
    ("upstream pool acquire/release", frozenset({"acquire", "release", "connect"}),
     _ours("upstream.py")),
    ("Node.host/.port (urlsplit per request)", frozenset({"host", "port"}), _ours("ring.py")),
    ("forward.exchange_head", frozenset({"exchange_head"}), _ours("forward.py")),
    ("forward.relay_response", frozenset({"relay_response"}), _ours("forward.py")),
]  # fmt: skip


def _matches(funcs: frozenset[str] | None, frags: tuple[str, ...], f: str, p: str) -> bool:
    return any(frag in p for frag in frags) and (funcs is None or f in funcs)


Sample = tuple[list[tuple[str, str]], float]  # ([(function, short path), ...] root first, weight)


def _short(path: str) -> str:
    """`h11/_connection.py`, `router/app.py`, `logging/__init__.py`: comparable across tools."""
    for marker in ("/site-packages/", str(REPO) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    m = re.search(r"/lib/python3[.\d]*/(.*)", path)
    return m.group(1) if m else path


def pyinstrument_samples(session: Any) -> list[Sample]:
    out = []
    for stack, t in session.frame_records:
        frames = []
        for info in stack:
            parts = info.split("\x01", 1)[0].split("\x00")
            frames.append((parts[0], _short(parts[1]) if len(parts) > 1 else ""))
        out.append((frames, t))
    return out


def pyspy_samples(raw: str) -> list[Sample]:
    """py-spy's `--format raw` (collapsed stacks: `f (file:line);f (file:line) count`)."""
    out = []
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for fr in stack.split(";"):
            m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", fr)
            if m:
                frames.append((m.group(1).rsplit(".", 1)[-1], _short(m.group(2))))
        out.append((frames, float(count)))
    return out


def summarize(samples: list[Sample], requests: int) -> dict[str, Any]:
    """Inclusive shares per category and self time per module/function, of busy time."""
    total = sum(t for _, t in samples) or 1e-9
    cats = dict.fromkeys((label for label, _, _ in CATEGORIES), 0.0)
    _, idle_funcs, idle_frag = CATEGORIES[0]
    self_time: dict[str, float] = {}
    module_self: dict[str, float] = {}
    idle = 0.0
    for frames, t in samples:
        paths = [(f, "/" + p) for f, p in frames]
        for label, funcs, frag in CATEGORIES:
            if any(_matches(funcs, frag, f, p) for f, p in paths):
                cats[label] += t
        if any(_matches(idle_funcs, idle_frag, f, p) for f, p in paths):
            idle += t
            continue
        f, p = frames[-1] if frames else ("?", "?")
        key = f"{f} ({p})"
        self_time[key] = self_time.get(key, 0.0) + t
        mod = _module(p)
        module_self[mod] = module_self.get(mod, 0.0) + t
    busy = max(total - idle, 1e-9)

    def ranked(d: dict[str, float], k: int) -> list[dict[str, Any]]:
        top = sorted(d.items(), key=lambda kv: -kv[1])[:k]
        return [{"name": n, "pct_busy": round(100 * v / busy, 1)} for n, v in top]

    return {
        "samples": len(samples),
        "requests": requests,
        "idle_pct": round(100 * idle / total, 1),
        "categories_pct_busy": {
            k: round(100 * v / busy, 1) for k, v in cats.items() if not k.startswith("idle")
        },
        "self_time_by_module": ranked(module_self, 20),
        "self_time_top_functions": ranked(self_time, 30),
    }


def _module(path: str) -> str:
    if "/" not in path:
        return path or "<builtin>"
    head = path.split("/")[0]
    if head in ("trio", *OURS):
        return path.rsplit(".", 1)[0].replace("/", ".")
    return head
