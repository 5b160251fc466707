"""`preview-node` flags (CONTRACT §1) and the resolved configuration."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from previewcore.config import (
    EnvParser,
    add_common,
    add_preview_domain,
    host_port,
    non_negative_float,
    non_negative_int,
    positive_int,
    seconds,
)
from previewcore.urls import preview_path
from previewnode.limits import SessionLimits

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"


def build_parser() -> EnvParser:
    p = EnvParser(
        prog="preview-node",
        description="Stateful preview node: sessions and their Vite dev servers.",
    )
    p.flag("--name", default=socket.gethostname().split(".")[0], help="this node's ring name")
    p.flag("--listen", default="127.0.0.1:9000", type=host_port, help="HOST:PORT to serve on")
    p.flag("--admin-listen", type=host_port, help="HOST:PORT serving /metrics (then only there)")
    p.flag("--data-dir", type=Path, required=True, help="workspaces and session records")
    p.flag("--runtime-dir", default=RUNTIME_DIR, type=Path, help="the installed Vite runtime")
    p.flag("--cache-dir", type=Path, help="installed dependency sets (default {data-dir}/cache)")
    p.flag("--public-url", default="http://127.0.0.1:8080", help="the router's public base URL")
    p.flag("--secret-file", type=Path, required=True, help="ID secrets; the first line signs")
    p.flag("--api-token-file", type=Path, help="bearer tokens for /kontext/*, one per line")
    p.flag("--max-sessions", default=200, type=positive_int, help="registered sessions")
    p.flag("--max-running", default=8, type=positive_int, help="Vite processes at once")
    p.flag(
        "--warm-sandboxes",
        default=1,
        type=non_negative_int,
        help="dev servers started ahead of need (Node up, Vite imported), each handed to the "
        "next session on the runtime's dependencies that starts; beyond --max-running",
    )
    p.flag("--idle-seconds", default=600.0, type=seconds, help="stop a Vite idle this long")
    p.flag("--max-ttl", default=86400.0, type=seconds, help="longest session lifetime")
    p.flag(
        "--hold-seconds", default=30.0, type=seconds, help="hold preview requests while Vite starts"
    )
    p.flag("--max-body-bytes", default=32 * 1024 * 1024, type=positive_int, help="API body limit")
    p.flag("--max-files", default=5000, type=positive_int, help="files per upload")
    p.flag("--max-file-bytes", default=8 * 1024 * 1024, type=positive_int, help="bytes per file")
    p.flag(
        "--max-workspace-bytes",
        default=256 * 1024 * 1024,
        type=positive_int,
        help="bytes in a workspace across creates and updates",
    )
    p.flag("--header-timeout", default=30.0, type=seconds, help="seconds for a request head")
    p.flag(
        "--default-access",
        default="public",
        choices=["public", "private"],
        help="access of a session created without one",
    )
    p.flag(
        "--sandbox",
        default="auto",
        choices=["required", "auto", "off"],
        help="dev servers in a sandbox; auto: when one works here, else the fixed config",
    )
    p.flag(
        "--sandbox-mechanism",
        default="auto",
        choices=["auto", "bwrap", "landlock"],
        help="the sandbox: bubblewrap (namespaces), or Landlock + seccomp where user "
        "namespaces are not allowed; auto: bwrap when its probe works, else landlock",
    )
    p.flag(
        "--session-memory-bytes",
        default=2 * 1024**3,
        type=positive_int,
        help="memory of one dev server and all it runs (cgroup; the kernel kills past it)",
    )
    p.flag(
        "--session-max-pids",
        default=512,
        type=positive_int,
        help="processes and threads of one dev server (cgroup)",
    )
    p.flag(
        "--session-cpus",
        default=1.0,
        type=non_negative_float,
        help="CPUs one dev server may use (cgroup; 0: unthrottled)",
    )
    p.flag(
        "--session-disk-bytes",
        default=1024**3,
        type=positive_int,
        help="disk of one session's workspace and Vite cache, which its dev server (running "
        "the app's own config) can write to; past it the dev server stops and the session "
        "is failed until an upload retries it",
    )
    p.flag(
        "--check-browser",
        help="Chromium for POST /kontext/preview/{id}/check (e.g. /usr/bin/chromium; "
        "needs the playwright package); unset: the check is off",
    )
    p.flag(
        "--max-cache-bytes",
        default=4 * 1024**3,
        type=positive_int,
        help="installed dependency sets kept for reuse; unused ones go first when over",
    )
    p.flag(
        "--npmrc",
        type=Path,
        help="npm config for dependency installs (registry, its auth, proxy, fetch-retries, "
        "fetch-timeout); unset: npm's defaults",
    )
    p.flag(
        "--min-free-bytes",
        default=256 * 1024**2,
        type=int,
        help="disk watermark: creates, uploads and installs that would leave less free "
        "on the data dir's disk answer 507 (0: none)",
    )
    p.flag(
        "--events-heartbeat",
        default=15.0,
        type=seconds,
        help="seconds of silence on /events before a heartbeat (keeps proxies from closing it)",
    )
    add_preview_domain(p)
    add_common(p)
    return p


@dataclass(frozen=True)
class NodeConfig:
    name: str
    listen: tuple[str, int]
    data_dir: Path
    runtime_dir: Path
    cache_dir: Path
    public_url: str
    secret_file: Path
    api_token_file: Path | None = None
    admin_listen: tuple[str, int] | None = None
    max_sessions: int = 200
    max_running: int = 8
    warm_sandboxes: int = 0  # previewnode.warm (the command line's default is 1)
    idle_seconds: float = 600.0
    max_ttl: float = 86400.0
    hold_seconds: float = 30.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_files: int = 5000
    max_file_bytes: int = 8 * 1024 * 1024
    max_workspace_bytes: int = 256 * 1024 * 1024
    header_timeout: float = 30.0
    default_ttl: float = 86400.0
    connect_timeout: float = 2.0
    sweep_interval: float = 5.0
    preview_domain: str | None = None  # subdomain mode: {id}.{domain}
    default_access: str = "public"
    sandbox: str = "auto"  # required | auto | off (previewnode.sandbox)
    sandbox_mechanism: str = "auto"  # auto | bwrap | landlock (previewnode.sandbox)
    session_limits: SessionLimits = field(default_factory=SessionLimits)
    events_heartbeat: float = 15.0  # seconds of silence on /events before a comment line
    min_free_bytes: int = 256 * 1024**2  # disk watermark (0: none)
    max_cache_bytes: int = 4 * 1024**3  # installed dependency sets (cache_gc)
    session_disk_bytes: int = 1024**3  # one session's workspace + Vite cache (supervisor)
    check_browser: str | None = None  # the headless check's Chromium (previewnode.check)
    npmrc: Path | None = None  # npm's config for installs (previewnode.deps); None: defaults

    @property
    def public_host(self) -> str:
        """Host (with port when not the default) that browsers send: Vite must accept it."""
        return urlsplit(self.public_url).netloc

    @property
    def public_hostname(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"

    @property
    def public_port(self) -> int:
        parts = urlsplit(self.public_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def ws_scheme(self) -> str:
        return "wss" if urlsplit(self.public_url).scheme == "https" else "ws"

    def preview_host(self, session_id: str) -> str:
        """The Host browsers send for a preview: the dev server accepts only this one."""
        if self.preview_domain:
            return f"{session_id}.{self.preview_domain}"
        return self.public_hostname

    def dev_server_base(self, session_id: str) -> str:
        return "/" if self.preview_domain else preview_path(session_id)

    def preview_url(self, session_id: str) -> str:
        parts = urlsplit(self.public_url)
        if not self.preview_domain:
            return f"{self.public_url}{preview_path(session_id)}"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{self.preview_host(session_id)}{port}/"

    def ws_url(self, session_id: str) -> str:
        http = self.preview_url(session_id)
        return self.ws_scheme + http[http.index("://") :] + "hmr"


def from_args(a: dict[str, object]) -> NodeConfig:
    data_dir = Path(str(a["data_dir"])).resolve()
    cache = a.get("cache_dir")
    return NodeConfig(
        name=str(a["name"]),
        listen=a["listen"],  # type: ignore[arg-type]
        data_dir=data_dir,
        runtime_dir=Path(str(a["runtime_dir"])).resolve(),
        cache_dir=Path(str(cache)).resolve() if cache else data_dir / "cache",
        public_url=str(a["public_url"]).rstrip("/"),
        secret_file=Path(str(a["secret_file"])),
        api_token_file=Path(str(a["api_token_file"])) if a.get("api_token_file") else None,
        admin_listen=a.get("admin_listen"),  # type: ignore[arg-type]
        max_sessions=int(a["max_sessions"]),  # type: ignore[call-overload]
        max_running=int(a["max_running"]),  # type: ignore[call-overload]
        warm_sandboxes=int(a.get("warm_sandboxes", 1)),  # type: ignore[call-overload]
        idle_seconds=float(a["idle_seconds"]),  # type: ignore[arg-type]
        max_ttl=float(a["max_ttl"]),  # type: ignore[arg-type]
        hold_seconds=float(a["hold_seconds"]),  # type: ignore[arg-type]
        max_body_bytes=int(a["max_body_bytes"]),  # type: ignore[call-overload]
        max_files=int(a["max_files"]),  # type: ignore[call-overload]
        max_file_bytes=int(a["max_file_bytes"]),  # type: ignore[call-overload]
        max_workspace_bytes=int(a.get("max_workspace_bytes") or 256 * 1024 * 1024),  # type: ignore[call-overload]
        header_timeout=float(a["header_timeout"]),  # type: ignore[arg-type]
        default_ttl=min(86400.0, float(a["max_ttl"])),  # type: ignore[arg-type]
        preview_domain=a.get("preview_domain") or None,  # type: ignore[arg-type]
        default_access=str(a.get("default_access") or "public"),
        sandbox=str(a.get("sandbox") or "auto"),
        sandbox_mechanism=str(a.get("sandbox_mechanism") or "auto"),
        events_heartbeat=float(a.get("events_heartbeat") or 15.0),  # type: ignore[arg-type]
        min_free_bytes=int(a.get("min_free_bytes", 256 * 1024**2)),  # type: ignore[call-overload]
        max_cache_bytes=int(a.get("max_cache_bytes", 4 * 1024**3)),  # type: ignore[call-overload]
        session_disk_bytes=int(a.get("session_disk_bytes", 1024**3)),  # type: ignore[call-overload]
        check_browser=str(a["check_browser"]) if a.get("check_browser") else None,
        npmrc=Path(str(a["npmrc"])).resolve() if a.get("npmrc") else None,
        session_limits=SessionLimits(
            memory_bytes=int(a.get("session_memory_bytes") or 2 * 1024**3),  # type: ignore[call-overload]
            max_pids=int(a.get("session_max_pids") or 512),  # type: ignore[call-overload]
            cpus=float(a["session_cpus"] if a.get("session_cpus") is not None else 1.0),  # type: ignore[arg-type]
        ),
    )
