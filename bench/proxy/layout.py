"""The files and ports of one proxy-benchmark run: secret, ring, session IDs, static files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port

HOST = "127.0.0.1"
FILES = {"1k": 1024, "100k": 100 * 1024}


@dataclass
class Layout:
    tmp: Path
    secret: Path
    ring: Path
    http_sid: str
    ws_sid: str
    ports: dict[str, int] = field(default_factory=dict)

    def http_path(self, name: str) -> str:
        return f"/preview/{self.http_sid}/{name}.bin"

    @property
    def ws_path(self) -> str:
        return f"/preview/{self.ws_sid}/ws"


def prepare(tmp: Path, proxies: list[str]) -> Layout:
    """Secret, ring (`node-0` serves files, `node-1` echoes), IDs, files, a port per server
    (one per proxy target, and CHP's API)."""
    from previewcore.session_id import mint, parse_secrets

    tmp.chmod(0o755)  # nginx workers drop to an unprivileged user when started as root
    secret = tmp / "secret"
    secret.write_text(os.urandom(24).hex() + "\n")
    keys = parse_secrets(secret.read_text())
    api = ["chp-api"] if "chp" in proxies else []
    ports = {k: free_port() for k in ("upstream", "ws", *proxies, *api)}
    layout = Layout(tmp, secret, tmp / "ring.toml", mint("node-0", keys), mint("node-1", keys))
    layout.ports = ports
    layout.ring.write_text(
        f'[[nodes]]\nname = "node-0"\nurl = "http://{HOST}:{ports["upstream"]}"\n\n'
        f'[[nodes]]\nname = "node-1"\nurl = "http://{HOST}:{ports["ws"]}"\n'
    )
    www = tmp / "www" / "preview" / layout.http_sid
    www.mkdir(parents=True)
    for name, size in FILES.items():
        (www / f"{name}.bin").write_bytes(os.urandom(size))
    for p in (tmp / "www", tmp / "www" / "preview", www):
        p.chmod(0o755)
    return layout
