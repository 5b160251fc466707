"""A dev server's configuration for pure tests of its argv, environment and config line."""

from __future__ import annotations

from pathlib import Path

from previewnode.devserver import DevServerConfig
from previewnode.sandbox import Sandbox


def dev_config(tmp: Path, sandbox: Sandbox | None) -> DevServerConfig:
    """Session `s1` under `tmp`, in `sandbox` (a listener's directory under bubblewrap)."""
    return DevServerConfig(
        session_id="s1",
        workspace=tmp / "ws",
        node_modules=tmp / "nm",
        cache_dir=tmp / "cache",
        runtime_dir=tmp / "runtime",
        base="/preview/s1/",
        allowed_hosts=("example.test",),
        client_port=443,
        client_protocol="wss",
        node_binary="/usr/bin/node",
        sandbox=sandbox,
        socket_dir=tmp / "sock" if sandbox and sandbox.mechanism == "bwrap" else None,
    )
