"""Start the platform on 127.0.0.1: two nodes and one router, plus a demo session.

Subdomain mode on `localhost`: each session is its own web origin,
`http://{id}.localhost:8080/` (browsers and curl resolve `*.localhost` to loopback).
The API needs the token in `run/api-token` (made on the first run; the `preview`
client reads it from there too). Everything lives under `run/` (gitignored): the ID
secret, the API token, the ring file, each node's data dir and each process's log. A
second run reuses them, so sessions survive. Ctrl-C stops every process (SIGTERM,
then SIGKILL after 10 s).

Ports: PREVIEW_LOCAL_ROUTER_PORT (8080), PREVIEW_LOCAL_NODE_PORT (9100; the
second node takes the next one).

Processes go through tests/support/processes.py, the one supervisor tests and bench/
use: each child in its own process group, all stopped on exit, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "run"
PY = str(ROOT / ".venv" / "bin" / "python")
DEMO = ROOT / "examples" / "counter"
DEMO_ID = "demo-counter"
DOMAIN = "localhost"
TOKEN_FILE = RUN / "api-token"


def demo_files() -> dict[str, str]:
    return {str(p.relative_to(DEMO)): p.read_text() for p in DEMO.rglob("*") if p.is_file()}


def api(method: str, url: str, body: object | None = None) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {TOKEN_FILE.read_text().strip()}",
    }
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def main() -> int:
    sys.path.insert(0, str(ROOT))  # for tests/support/processes.py
    from tests.support.processes import Exited, Proc, Processes, processes, wait_http

    router_port = int(os.environ.get("PREVIEW_LOCAL_ROUTER_PORT", "8080"))
    node_port = int(os.environ.get("PREVIEW_LOCAL_NODE_PORT", "9100"))
    public = f"http://{DOMAIN}:{router_port}"
    (RUN / "logs").mkdir(parents=True, exist_ok=True)
    secret = RUN / "secret"
    for path in (secret, TOKEN_FILE):
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48 if path is secret else 32) + "\n")
            path.chmod(0o600)
    shared = ["--preview-domain", DOMAIN, "--api-token-file", str(TOKEN_FILE)]
    ring = RUN / "ring.toml"
    nodes = {f"node-{i}": node_port + i for i in range(2)}
    ring.write_text(
        "".join(
            f'[[nodes]]\nname = "{n}"\nurl = "http://127.0.0.1:{p}"\nstate = "active"\n\n'
            for n, p in nodes.items()
        )
    )
    started: list[Proc] = []

    def start(ps: Processes, name: str, args: list[str], health: str) -> None:
        proc = ps.start(args, name)
        started.append(proc)
        try:
            wait_http(health, timeout=30, proc=proc, interval=0.1)
        except Exited:
            sys.exit(f"run-local: {health} exited early; see {proc.log}:\n{proc.output()[-2000:]}")
        except TimeoutError:
            sys.exit(f"run-local: {health} did not come up; see {proc.log}")

    def serve(ps: Processes) -> int:
        for name, port in nodes.items():
            start(
                ps,
                name,
                [
                    PY,
                    "-m",
                    "previewnode",
                    "--name",
                    name,
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--data-dir",
                    str(RUN / name),
                    "--secret-file",
                    str(secret),
                    "--public-url",
                    public,
                    *shared,
                    "--log-format",
                    "text",
                ],
                f"http://127.0.0.1:{port}/healthz",
            )
        start(
            ps,
            "router",
            [
                PY,
                "-m",
                "router",
                "--listen",
                f"127.0.0.1:{router_port}",
                "--ring",
                str(ring),
                "--secret-file",
                str(secret),
                *shared,
                "--log-format",
                "text",
            ],
            f"http://127.0.0.1:{router_port}/readyz",
        )
        status, obj = api(
            "POST",
            f"{public}/kontext/preview?wait=ready",
            {"files": demo_files(), "sessionId": DEMO_ID},
        )
        if status == 409:  # kept from an earlier run: the same URL serves again
            status, obj = api("GET", f"{public}/kontext/preview/{DEMO_ID}")
        if status not in (200, 201):
            print(f"run-local: creating the demo session failed: {status} {obj}", file=sys.stderr)
            return 1
        print(
            f"""
Preview platform running on 127.0.0.1 (router {public}, nodes {", ".join(f"{n}:{p}" for n, p in nodes.items())})

  Demo preview:  {obj["previewUrl"]}   (session {obj["sessionId"]}, node {obj["node"]}, {obj["status"]})
                 each session is its own origin, http://{{id}}.{DOMAIN}:{router_port}/

  API token:     {TOKEN_FILE}   (every /kontext/* call needs it; the preview client reads it)
                 curl -H "authorization: Bearer $(cat {TOKEN_FILE})" {public}/kontext/preview/{DEMO_ID}
  Edit live:     .venv/bin/preview up examples/counter --watch   (a new session; edits push by HMR)
  Edit the demo: PUT {public}/kontext/preview/{DEMO_ID}/files  {{"files": {{"src/App.jsx": "..."}}}}
  Your own app:  .venv/bin/preview up PATH/TO/APP --watch
  Logs:          {RUN / "logs"}/{{router,node-0,node-1}}.log
  Ring file:     {ring}   (edit it or use `.venv/bin/preview-router ring ...`: the router reloads it)

Ctrl-C stops everything; sessions stay in {RUN}/node-*/ for the next run.""",
            flush=True,
        )
        while all(p.alive() for p in started):
            time.sleep(0.5)
        dead = [p.name for p in started if not p.alive()]
        print(
            f"run-local: {', '.join(dead)} exited; stopping the rest (see the logs)",
            file=sys.stderr,
        )
        return 1

    with processes(RUN / "logs", grace=10.0) as ps:
        try:
            code = serve(ps)
        except KeyboardInterrupt:
            print("\nrun-local: stopping")
            code = 0
    for p in started:
        if p.killed:
            print(f"run-local: {p.name} killed after 10 s")
    return code


if __name__ == "__main__":
    sys.exit(main())
