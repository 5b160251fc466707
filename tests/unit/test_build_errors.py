"""Build errors carry their place (CONTRACT §2: workspace-relative file, line >= 1, column):
the error shapes Vite 8 and its plugins emit, as captured from the real runtime, through
the launcher's pure `describe` (previewnode/runtime/build-errors.mjs), run by Node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

MODULE = Path(__file__).resolve().parents[2] / "previewnode" / "runtime" / "build-errors.mjs"
ROOT = "/data/sessions/node-0--abc/ws"
VT = "\u001b[31m[PARSE_ERROR] \u001b[0m"
OXC_DIAGNOSTIC = (
    f"{VT}Unterminated string\n   \u001b[38;5;246m╭\u001b[0m\u001b[38;5;246m─\u001b[0m"
    "\u001b[38;5;246m[\u001b[0m src/broken.js:3:23 \u001b[38;5;246m]\u001b[0m\n   │\n 3 │ export"
)
SOURCES = {
    "src/broken.js": "// one\n// two\nexport const broken = 'unterminated;\n",
    "src/index.css": '@import "tailwindcss";\n\n@import "./nope.css";\n',
    "src/main.jsx": 'import App from "./App";\nimport "./gone.css";\n',
}

CASES: list[tuple[str, dict[str, Any], str | None, dict[str, Any] | None]] = [
    (
        "import analysis: loc, 0-based column",
        {
            "message": "Failed to parse source for import analysis because the content "
            "contains invalid JS syntax.",
            "loc": {"file": f"{ROOT}/src/broken.js", "line": 3, "column": 36},
            "id": f"{ROOT}/src/broken.js",
            "plugin": "vite:import-analysis",
        },
        None,
        {"file": "src/broken.js", "line": 3, "column": 37},
    ),
    (
        "oxc parse error: the place inside errors[]",
        {
            "message": f"Transform failed with 1 error:\n\n{OXC_DIAGNOSTIC}",
            "id": f"{ROOT}/src/broken.js",
            "plugin": "vite:oxc",
            "errors": [
                {
                    "code": "PARSE_ERROR",
                    "message": OXC_DIAGNOSTIC,
                    "loc": {"line": 3, "column": 22, "file": f"{ROOT}/src/broken.js"},
                    "pos": 36,
                }
            ],
        },
        None,
        {
            "file": "src/broken.js",
            "line": 3,
            "column": 23,
            "message": "[PARSE_ERROR] Unterminated string",
        },
    ),
    (
        # what Vite sends browsers: errors[] dropped; this was the line-0 case
        "the same error as sent to browsers: the place only in the diagnostic",
        {"message": f"Transform failed with 1 error:\n\n{OXC_DIAGNOSTIC}", "id": "/src/broken.js"},
        None,
        {"file": "src/broken.js", "line": 3, "column": 23},
    ),
    (
        "PostCSS: loc, and the node's path cut from the message",
        {
            "message": f"[postcss] {ROOT}/src/bad.css:3:1: Unclosed block",
            "loc": {"file": f"{ROOT}/src/bad.css", "line": 3, "column": 0},
            "id": f"{ROOT}/src/bad.css",
            "plugin": "vite:css",
        },
        None,
        {
            "file": "src/bad.css",
            "line": 3,
            "column": 1,
            "message": "[postcss] src/bad.css:3:1: Unclosed block",
        },
    ),
    (
        "unresolved import: loc",
        {
            "message": 'Failed to resolve import "./nope.js" from "src/unres.js". '
            "Does the file exist?",
            "loc": {"file": f"{ROOT}/src/unres.js", "line": 1, "column": 15},
            "id": f"{ROOT}/src/unres.js",
        },
        None,
        {"file": "src/unres.js", "line": 1, "column": 16},
    ),
    (
        "Tailwind's resolver names no place: found where the source names the specifier",
        {
            "message": f"Can't resolve './nope.css' in '{ROOT}/src'",
            "id": f"{ROOT}/src/index.css",
            "plugin": "@tailwindcss/vite:generate:serve",
        },
        None,
        {
            "file": "src/index.css",
            "line": 3,
            "column": 9,
            "message": "Can't resolve './nope.css' in 'src'",
        },
    ),
    (
        "rolldown's unresolved import, the importer given by the caller",
        {"message": 'Could not resolve "./gone.css"'},
        "src/main.jsx",
        {"file": "src/main.jsx", "line": 2, "column": 8},
    ),
    (
        "no place known at all: the file's start (line >= 1 always)",
        {"message": "[plugin my-plugin] something broke", "id": f"{ROOT}/src/a.ts"},
        None,
        {"file": "src/a.ts", "line": 1, "column": 1},
    ),
    (
        "an error in a dependency belongs to no workspace file",
        {
            "message": "boom",
            "loc": {"file": f"{ROOT}/node_modules/x/index.js", "line": 9, "column": 1},
            "id": f"{ROOT}/node_modules/x/index.js",
        },
        None,
        None,
    ),
    (
        "an error outside the workspace names none of its path",
        {"message": "boom", "id": "/etc/passwd"},
        None,
        None,
    ),
]


@pytest.fixture(scope="module")
def described() -> list[Any]:
    node = shutil.which("node")
    assert node, "node is needed (scripts/setup installs it)"
    script = f"""
import {{ describe }} from {json.dumps(str(MODULE))};
const cases = JSON.parse(process.argv[1]);
const sources = {json.dumps(SOURCES)};
const out = cases.map(([err, fallback]) =>
  describe(err, {{ root: {json.dumps(ROOT)}, fallback, readSource: (f) => sources[f] ?? null }}));
process.stdout.write(JSON.stringify(out));
"""
    args = json.dumps([[err, fallback] for _, err, fallback, _ in CASES])
    done = subprocess.run(
        [node, "--input-type=module", "-e", script, args],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c[0] for c in CASES])
def test_each_error_shape_gets_its_place(described: list[Any], index: int) -> None:
    _, _, _, expected = CASES[index]
    got = described[index]
    if expected is None:
        assert got is None
        return
    assert {k: got[k] for k in expected} == expected, got
    assert got["line"] >= 1 and got["column"] >= 1
    assert ROOT not in got["message"] and "\u001b" not in got["message"]
