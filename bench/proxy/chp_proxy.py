"""configurable-http-proxy (npm, pinned in `bench/proxy/chp/`) as the proxy under test: the
file upstream as its `--default-target`, the WebSocket echo as a route added through its
REST API, the way JupyterHub drives it.

Headers: CHP's own X-Forwarded-For/-Port/-Proto/-Host (its default, on); it cannot mint a
per-request ID, so unlike the router, nginx and HAProxy it adds no X-Request-ID.
Logging: `--log-level warn`, so no line per request (CHP logs every response at info).
"""

from __future__ import annotations

import http.client
import json
import os

from bench.proxy.layout import HOST, Layout
from bench.proxy.targets import CHP_BIN


def argv(node: str, layout: Layout) -> list[str]:
    p = layout.ports
    return [
        node, str(CHP_BIN),
        "--ip", HOST, "--port", str(p["chp"]),
        "--api-ip", HOST, "--api-port", str(p["chp-api"]),
        "--default-target", f"http://{HOST}:{p['upstream']}",
        "--log-level", "warn",
    ]  # fmt: skip


def token() -> str:
    """The API token for CONFIGPROXY_AUTH_TOKEN (CHP's API refuses requests without one)."""
    return os.urandom(16).hex()


def add_ws_route(layout: Layout, auth: str) -> None:
    """POST /api/routes/preview/{ws id} -> the echo server; CHP keeps the path's prefix."""
    body = json.dumps({"target": f"http://{HOST}:{layout.ports['ws']}"})
    conn = http.client.HTTPConnection(HOST, layout.ports["chp-api"], timeout=5)
    try:
        conn.request(
            "POST",
            f"/api/routes/preview/{layout.ws_sid}",
            body,
            {"Authorization": f"token {auth}", "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        if resp.status != 201:
            raise RuntimeError(f"CHP refused the WebSocket route: {resp.status} {resp.read()!r}")
    finally:
        conn.close()
