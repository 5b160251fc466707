"""`preview-router`: parse flags, then run one process or a parent with N workers.

Workers: the parent binds the listening socket *before* any trio loop exists and
forks; each worker runs its own trio loop on the inherited socket (trio has no
SO_REUSEPORT listener option, and a shared accept queue balances well enough).
The parent forwards SIGTERM/SIGHUP/SIGINT to every worker and exits when they
have. Metrics: the parent points prometheus-client at a fresh multiprocess
directory before anything imports it, so `/metrics` aggregates all workers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

from previewcore.config import (
    EnvParser,
    add_common,
    add_preview_domain,
    host_port,
    positive_int,
    seconds,
)
from previewcore.cors import parse_origins


def build_parser() -> EnvParser:
    p = EnvParser(
        prog="preview-router",
        description="Stateless HTTP/WebSocket router for previews.",
        epilog="Ring editing: preview-router ring show|add|drain|activate|remove FILE ...",
    )
    p.flag("--listen", default="127.0.0.1:8080", type=host_port, help="HOST:PORT to serve on")
    p.flag("--ring", type=Path, required=True, help="ring file (TOML), re-read when it changes")
    p.flag("--secret-file", type=Path, required=True, help="ID secrets, one per line")
    p.flag("--api-token-file", type=Path, help="bearer tokens for /kontext/*, one per line")
    p.flag("--workers", default=1, type=positive_int, help="worker processes sharing the socket")
    p.flag("--trusted-proxies", default="", help="CIDRs whose X-Forwarded-* headers are kept")
    p.flag(
        "--max-body-bytes",
        default=32 * 1024 * 1024,
        type=positive_int,
        help="limit for /kontext/* bodies",
    )
    p.flag("--max-connections", default=10_000, type=positive_int, help="open client connections")
    p.flag("--connect-timeout", default=2.0, type=seconds, help="seconds to connect to a node")
    p.flag("--upstream-timeout", default=60.0, type=seconds, help="seconds for a node's answer")
    p.flag("--header-timeout", default=30.0, type=seconds, help="seconds for a request head")
    p.flag(
        "--drain-seconds", default=60.0, type=seconds, help="how long tunnels may stay on SIGTERM"
    )
    p.flag("--admin-listen", type=host_port, help="HOST:PORT serving /metrics (then only there)")
    add_preview_domain(p)
    p.flag(
        "--api-cors-origins",
        default="",
        type=_origins,
        help="browser origins allowed to call /kontext/* (comma-separated); others get 403",
    )
    p.flag(
        "--frame-ancestors",
        help="CSP frame-ancestors sources for preview HTML, e.g. \"'self' https://app.example\"",
    )
    add_common(p)
    return p


def _origins(text: str) -> frozenset[str]:
    try:
        return parse_origins(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _run_one(
    args: object, sock: socket.socket | None, admin_sock: socket.socket | None = None
) -> int:
    import trio

    from proxycore import logs
    from router.service import RouterConfig, RouterService

    a = vars(args)
    logs.setup(a["log_format"], a["log_level"])
    cfg = RouterConfig(
        listen=a["listen"],
        ring=a["ring"],
        secret_file=a["secret_file"],
        api_token_file=a["api_token_file"],
        admin_listen=a["admin_listen"],
        trusted_proxies=a["trusted_proxies"],
        max_body_bytes=a["max_body_bytes"],
        max_connections=a["max_connections"],
        connect_timeout=a["connect_timeout"],
        upstream_timeout=a["upstream_timeout"],
        header_timeout=a["header_timeout"],
        drain_seconds=a["drain_seconds"],
        preview_domain=a["preview_domain"],
        api_cors_origins=a["api_cors_origins"],
        frame_ancestors=a["frame_ancestors"],
    )
    try:
        service = RouterService(cfg, sock, admin_sock=admin_sock)
    except (OSError, ValueError) as exc:
        print(f"preview-router: {exc}", file=sys.stderr)
        return 2
    trio.run(service.run)
    return 0


def _run_workers(args: object, count: int) -> int:
    a = vars(args)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="preview-router-metrics-")
    from router.service import STOP_SIGNALS  # after the line above: metrics read it at import

    sock = _bind(*a["listen"])
    admin_sock = _bind(*a["admin_listen"]) if a["admin_listen"] else None
    children: list[int] = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            # Held until the worker's own handlers are in place (RouterService._signals): a
            # SIGTERM forwarded while it still imports would otherwise kill it outright.
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            code = 1
            try:
                code = _run_one(args, sock, admin_sock)
            finally:
                os._exit(code)
        children.append(pid)
    sock.close()
    if admin_sock is not None:
        admin_sock.close()

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, forward)
    status = 0
    for pid in children:
        while True:
            try:
                _, code = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
        status = status or os.waitstatus_to_exitcode(code)
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ring"]:
        from router.ringctl import main as ring_main

        return ring_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.workers > 1:
        return _run_workers(args, args.workers)
    return _run_one(args, None)


if __name__ == "__main__":
    sys.exit(main())
