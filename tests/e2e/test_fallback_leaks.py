"""The three leaks reproduced against the fixed-config fallback (`--sandbox off`), as
regression tests (CONTRACT §6: without a sandbox, CSS imports, globs and Tailwind
directives are checked against the workspace by resolved path). In each, the secret's
bytes and other sessions' IDs must reach no preview response, build error or API answer.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cluster import app_files, http
from tests.support.processes import processes
from tests.support.ring import SECRET

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fallback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("fallback")
    secret = tmp / "secret"
    secret.write_text(SECRET + "\n")
    data = tmp / "data"
    with processes(tmp) as ps:
        _, port = ps.node("node-0", data, secret, "--sandbox", "off")
        base = f"http://127.0.0.1:{port}"
        assert http("GET", f"{base}/readyz").json()["sandbox"] == "none"
        other = http("POST", f"{base}/kontext/preview?wait=ready", {"files": app_files()}).json()
        yield {"base": base, "secret": secret, "data": data, "other": other["sessionId"]}


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return bytes(exc.read())


def answers(env: dict[str, Any], files: dict[str, str], paths: list[str]) -> list[bytes]:
    """Create a session with `files`, load `paths` as a browser would; every answer."""
    base = env["base"]
    made = http("POST", f"{base}/kontext/preview?wait=ready", {"files": {**app_files(), **files}})
    assert made.status == 201, made.body
    sid = made.json()["sessionId"]
    out = [made.body]
    out += [fetch(f"{base}/preview/{sid}/{p}") for p in paths]
    out.append(http("GET", f"{base}/kontext/preview/{sid}").body)
    return out


def assert_nothing_leaks(env: dict[str, Any], seen: list[bytes]) -> None:
    for body in seen:
        assert SECRET.encode() not in body, body[:500]
        assert env["other"].encode() not in body, body[:500]
    # the API's answers (build errors included) name workspace files, never node paths
    assert str(env["data"]).encode() not in seen[-1], seen[-1][:500]


@pytest.mark.parametrize(
    "css",
    [
        '@import "{secret}";\n',
        '@import "../../../../../../../../..{secret}";\n',
        '@import url("{secret}");\n',
        '@import "tailwindcss/../../../../../../../../..{secret}";\n',
    ],
)
def test_a_css_import_outside_the_workspace_reads_nothing(
    fallback: dict[str, Any], css: str
) -> None:
    files = {"src/leak.css": css.replace("{secret}", str(fallback["secret"]))}
    assert_nothing_leaks(fallback, answers(fallback, files, ["src/leak.css"]))


@pytest.mark.parametrize(
    "glob",
    [
        'import.meta.glob("/../../*/ws/src/*.jsx", { eager: true })',
        'import.meta .glob("../../../*/ws/src/*.jsx", { eager: true })',  # a space
        'import.meta.glob("\\x2e\\x2e/\\x2e\\x2e/\\x2e\\x2e/*/ws/src/*.jsx", { eager: true })',
        'import.meta["glob"]("../../../*/ws/src/*.jsx", { eager: true })',
    ],
)
def test_a_glob_outside_the_workspace_lists_nothing(fallback: dict[str, Any], glob: str) -> None:
    files = {"src/g.js": f"export const found = {glob};\nconsole.log(found);\n"}
    assert_nothing_leaks(fallback, answers(fallback, files, ["src/g.js"]))


@pytest.mark.parametrize(
    "plugin",
    [
        "jiti/lib/jiti-cli.mjs",  # a CLI inside the runtime's own node_modules
        "vite/bin/vite.js",
        "./plugin.mjs",  # an uploaded module
        "{data}/../evil.mjs",
    ],
)
def test_tailwind_plugins_run_no_javascript(
    fallback: dict[str, Any], tmp_path: Path, plugin: str
) -> None:
    marker = tmp_path / "ran"
    evil = f'import fs from "node:fs"; fs.writeFileSync({json.dumps(str(marker))}, "x");\n'
    (fallback["data"].parent / "evil.mjs").write_text(evil + "export default {};\n")
    css = f'@import "tailwindcss";\n@plugin "{plugin.replace("{data}", str(fallback["data"]))}";\n'
    files = {"src/index.css": css, "src/plugin.mjs": evil + "export default {};\n"}
    seen = answers(fallback, files, ["src/index.css"])
    assert not marker.exists(), "an uploaded module ran on the node"
    assert_nothing_leaks(fallback, seen)


def test_the_launcher_takes_no_configuration_from_argv(fallback: dict[str, Any]) -> None:
    """A CLI module that reads files named in argv would find none of the launcher's."""
    out = subprocess.run(["pgrep", "-af", "launcher.mjs"], capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if "pgrep" not in line]
    assert lines, "the fallback node runs a launcher"
    for line in lines:
        assert str(fallback["data"]) not in line and '"root"' not in line, line
