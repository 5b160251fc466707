"""What a client reads of a child's output: node paths cut, the last lines kept (pure)."""

from __future__ import annotations

import pytest

from previewnode.redact import cut_paths, tail

WS = "/srv/data/sessions/node-0--abc/ws"
ROOTS = [
    (WS, ""),
    ("/srv/data", "<data-dir>"),
    ("/opt/preview/runtime", "<runtime>"),
    ("/opt/preview/runtime/node_modules", "node_modules"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"failed to load config from {WS}/vite.config.js",
            "failed to load config from vite.config.js",
        ),
        (
            f"    at Object.<anonymous> ({WS}/vite.config.js:1:7)",
            "    at Object.<anonymous> (vite.config.js:1:7)",
        ),
        (f"cwd {WS}", "cwd ."),
        (
            "at x (file:///opt/preview/runtime/node_modules/vite/dist/node.js:3:4)",
            "at x (node_modules/vite/dist/node.js:3:4)",
        ),
        ("import file:///opt/preview/runtime/launcher.mjs", "import <runtime>/launcher.mjs"),
        ("cache /srv/data/vite-cache/node-0--abc/x", "cache <data-dir>/vite-cache/node-0--abc/x"),
        ("node:internal/modules/cjs/loader:1521:14", "node:internal/modules/cjs/loader:1521:14"),
    ],
)
def test_node_paths_are_cut_the_workspace_to_upload_names(text: str, expected: str) -> None:
    assert cut_paths(text, ROOTS) == expected


def test_no_root_survives_in_any_form() -> None:
    text = "\n".join(f"{prefix}{root}/a {root}" for root, _ in ROOTS for prefix in ("", "file://"))
    out = cut_paths(text, ROOTS)
    assert "/srv/" not in out and "/opt/" not in out, out


def test_the_tail_is_the_last_lines_without_escapes_or_blank_lines() -> None:
    text = "\n".join(f"\x1b[31mline {i}\x1b[39m  " for i in range(50)) + "\n\n"
    assert tail(text, lines=3) == "line 47\nline 48\nline 49"
    assert tail("x" * 5000, chars=100) == "x" * 100
    assert tail("") == ""
