"""Which targets a proxy-benchmark run measures: the upstream itself (`direct`), the
reference proxies (nginx, HAProxy, configurable-http-proxy) and one router per source tree
and worker count. Pure, but for looking the proxies' binaries up on disk.

Never: install anything. A proxy that is not installed is skipped with a message naming
its install command, or, when it was asked for with `--target`, stops the run before any
process starts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

CHP_DIR = Path(__file__).resolve().parent / "chp"
CHP_BIN = CHP_DIR / "node_modules" / "configurable-http-proxy" / "bin" / "configurable-http-proxy"

REFERENCES = ("nginx", "haproxy", "chp")  # the proxies a router is compared with
SELECTABLE = ("direct", *REFERENCES, "router")
INSTALL = {
    "nginx": "apt-get install -y nginx",
    "haproxy": "apt-get install -y haproxy",
    "chp": "cd bench/proxy/chp && npm ci --ignore-scripts; needs node on PATH",
}


@dataclass(frozen=True)
class RouterTarget:
    """One router to start: its target name, the source tree it runs from, its workers."""

    name: str
    tree: Path
    workers: int


def binary(proxy: str) -> str | None:
    """The executable that runs `proxy` (`node` for CHP), or None when it is not installed."""
    if proxy == "chp":
        return shutil.which("node") if CHP_BIN.is_file() else None
    sbin = Path("/usr/sbin") / proxy  # root's PATH has it, a user's may not
    return shutil.which(proxy) or (str(sbin) if sbin.exists() else None)


def select(asked: list[str] | None, installed: set[str]) -> tuple[list[str], list[str]]:
    """(targets to run, targets not installed), in SELECTABLE order: those asked for with
    `--target`, or all of them. `direct` and `router` are always installed."""
    wanted = [t for t in SELECTABLE if not asked or t in asked]
    have = installed | {"direct", "router"}
    return [t for t in wanted if t in have], [t for t in wanted if t not in have]


def router_targets(trees: dict[str, Path], workers: list[int]) -> list[RouterTarget]:
    """One router per (tree, worker count). Names: `router`, `router:NAME` per tree
    (`--router-tree`), `:wN` appended when several worker counts run (`router:w1`)."""
    counts = list(dict.fromkeys(workers or [1]))
    out = []
    for tree_name, tree in trees.items():
        for n in counts:
            parts = ["router", tree_name, f"w{n}" if len(counts) > 1 else ""]
            out.append(RouterTarget(":".join(p for p in parts if p), tree, n))
    return out
