"""What a client may read of a child's output: its last lines, with the node's own paths cut.

A dev server's stderr and npm's error name absolute paths of this node (the session's
workspace, its dependency set, the runtime, the data and cache dirs). They reach the
session object's `error`, read by whoever drives the API, so, like the build errors
(`withoutRoot` in runtime/build-errors.mjs), they name files as the upload did: the
workspace prefix is cut, and every other private root becomes a short label.

Pure: the caller passes the roots (resolved too, where Node.js reports real paths).
Never: let a path under a given root through, in any of its forms (`file://` URLs too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
TAIL_LINES = 20
TAIL_CHARS = 2000


def cut_paths(text: str, roots: Iterable[tuple[str, str]]) -> str:
    """`text` with each (root, label) cut: `root/x` becomes `label/x` (just `x` for the
    empty label, the workspace's), a bare `root` the label (or `.`). Longest roots first,
    so a workspace inside the data dir is cut as the workspace."""
    for root, label in sorted(set(roots), key=lambda r: len(r[0]), reverse=True):
        root = root.rstrip("/")
        if not root:
            continue
        inside = f"{label}/" if label else ""
        text = text.replace(f"file://{root}/", inside).replace(f"{root}/", inside)
        text = text.replace(f"file://{root}", label or ".").replace(root, label or ".")
    return text


def tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last `lines` non-blank lines of `text`, without terminal escapes, at most
    `chars` characters (cut at the front: the last words say why it ended)."""
    kept = [line.rstrip() for line in ANSI.sub("", text).splitlines() if line.strip()]
    out = "\n".join(kept[-lines:])
    return out[-chars:]
