"""Hostile configs for the sandbox tests: JavaScript templates with placeholders."""

from __future__ import annotations

import json
from pathlib import Path


def fill(template: str, **values: object) -> str:
    """`template` with each placeholder NAME replaced by its value as a JSON literal."""
    text = template
    for name, value in values.items():
        text = text.replace(name, json.dumps(value))
    return text


def node_targets(
    data: Path, secret: Path, other_session: str, node_pid: int, node_port: int
) -> dict[str, object]:
    """What a hostile config aims at on the node, by placeholder: the secret file, the
    data dir and its sessions, another session's source, the node's process and port, and
    the port beside it (where a router would listen)."""
    return {
        "SECRET_FILE": str(secret),
        "SESSIONS_DIR": str(data / "sessions"),
        "OTHER_APP": str(data / "sessions" / other_session / "ws" / "src" / "App.jsx"),
        "DATA_DIR": str(data),
        "NODE_PID": node_pid,
        "NODE_PORT": node_port,
        "ROUTER_PORT": node_port + 1,
    }
