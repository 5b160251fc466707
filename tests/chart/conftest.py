"""Render charts/preview with Helm's own engine (helm-python-sdk binds Helm's Go library).

No cluster is involved: `Chart.render` is `helm template`. Where a test needs what
`lookup` returns on a real install, it points Helm at a fake API server on loopback
(`fake_apiserver`) that answers only the two requests `lookup` makes.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "preview"
CI_VALUES = Path(__file__).resolve().parent / "ci-values.yaml"
RELEASE = "rel"
NAMESPACE = "previews"
# The one value an install must give: subdomain mode is the chart's default and refuses
# to render without a domain. `render` puts it under the values a test passes (which may
# override it), so "defaults" below means the chart's defaults plus this.
INSTALL_VALUES: dict[str, Any] = {"previewDomain": "previews.example.net"}

Obj = dict[str, Any]

# A few tests cross-check the chart against the project's own code (the ring parser,
# the ring-name rule); make it importable when the package is not installed.
if importlib.util.find_spec("router") is None:
    sys.path.insert(0, str(ROOT))


@dataclass
class Rendered:
    """One render: the raw text per template and the parsed Kubernetes objects."""

    files: dict[str, str]
    objects: list[Obj] = field(default_factory=list)

    def __post_init__(self) -> None:
        for path, text in sorted(self.files.items()):
            if path.endswith(".txt"):
                continue
            self.objects += [doc for doc in yaml.safe_load_all(text) if doc]

    def all(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def container(self, kind: str, name: str | None = None) -> Obj:
        """The single container of a workload's pod template."""
        containers: list[Obj] = self.one(kind, name)["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def pod_spec(self, kind: str, name: str | None = None) -> Obj:
        spec: Obj = self.one(kind, name)["spec"]["template"]["spec"]
        return spec

    @property
    def notes(self) -> str:
        return next(text for path, text in self.files.items() if path.endswith("NOTES.txt"))

    @property
    def ring_toml(self) -> str:
        text: str = self.one("ConfigMap")["data"]["ring.toml"]
        return text


Render = Callable[..., Rendered]


@pytest.fixture(scope="session")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture
def ci_values() -> Obj:
    data: Obj = yaml.safe_load(CI_VALUES.read_text())
    return data


@pytest.fixture
def render(chart: helm.Chart) -> Render:
    def _render(
        values: Obj | None = None,
        *,
        name: str = RELEASE,
        namespace: str = NAMESPACE,
        config: helm.Config | None = None,
        is_upgrade: bool | None = None,
        bare: bool = False,
    ) -> Rendered:
        """`bare`: values.yaml and `values` only, without INSTALL_VALUES."""
        values = dict(values or {}) if bare else {**INSTALL_VALUES, **(values or {})}
        if config is None:
            files = chart.render(values, name=name, namespace=namespace, is_upgrade=is_upgrade)
        else:
            files = config.render(
                chart, values, name=name, namespace=namespace, is_upgrade=is_upgrade
            )
        return Rendered(files)

    return _render


class FakeApiServer:
    """A Kubernetes API server that knows only Secrets: enough for Helm's `lookup`."""

    def __init__(self) -> None:
        self.secrets: dict[tuple[str, str], dict[str, bytes]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append(path)
                status, body = server.answer(path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def answer(self, path: str) -> tuple[int, Obj]:
        if path == "/api/v1":
            return 200, {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {
                        "name": "secrets",
                        "singularName": "secret",
                        "namespaced": True,
                        "kind": "Secret",
                        "verbs": ["get", "list"],
                    }
                ],
            }
        parts = path.strip("/").split("/")
        if len(parts) == 6 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "secrets":
            data = self.secrets.get((parts[3], parts[5]))
            if data is not None:
                return 200, {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": parts[5], "namespace": parts[3]},
                    "type": "Opaque",
                    "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
                }
        return 404, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "NotFound",
            "code": 404,
        }

    def __enter__(self) -> FakeApiServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def fake_apiserver() -> Iterator[tuple[FakeApiServer, helm.Config]]:
    with (
        FakeApiServer() as server,
        helm.Config(kube_apiserver=server.url, kube_token="test", namespace=NAMESPACE) as cfg,
    ):
        yield server, cfg
