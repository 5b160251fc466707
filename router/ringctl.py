"""`preview-router ring show|add|drain|activate|remove FILE ...`: edit a ring file safely.

Each edit re-validates the whole ring and replaces the file atomically (temp
file in the same directory, fsync, rename), so a router polling the file never
reads half of it. For setups without Kubernetes; there the Helm chart renders it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from router.ring import Node, NodeState, Ring, RingError, parse_ring, render_ring


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read(path: Path) -> Ring:
    if not path.exists():
        return Ring([])
    return parse_ring(path.read_text(encoding="utf-8"), str(path))


def _with_state(ring: Ring, name: str, state: NodeState) -> Ring:
    node = ring.get(name)
    if node is None:
        raise RingError(f"no node named {name!r} in the ring")
    return Ring(
        Node(n.name, n.url, state, n.weight) if n.name == name else n for n in ring.nodes.values()
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="preview-router ring", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    show = sub.add_parser("show", help="print the ring and each node's state")
    show.add_argument("file", type=Path)
    add = sub.add_parser("add", help="add an active node")
    add.add_argument("file", type=Path)
    add.add_argument("name")
    add.add_argument("url")
    add.add_argument("--weight", type=int, default=1)
    for cmd, text in (
        ("drain", "take no new sessions"),
        ("activate", "take new sessions again"),
        ("remove", "remove (drain it first)"),
    ):
        p = sub.add_parser(cmd, help=text)
        p.add_argument("file", type=Path)
        p.add_argument("name")
    args = parser.parse_args(argv)
    try:
        ring = _read(args.file)
        if args.cmd == "show":
            for n in ring.nodes.values():
                print(f"{n.name}\t{n.state}\tweight={n.weight}\t{n.url}")
            return 0
        if args.cmd == "add":
            if args.name in ring.nodes:
                raise RingError(f"node {args.name!r} already in the ring")
            new = Ring([*ring.nodes.values(), Node(args.name, args.url, "active", args.weight)])
        elif args.cmd == "drain":
            new = _with_state(ring, args.name, "draining")
        elif args.cmd == "activate":
            new = _with_state(ring, args.name, "active")
        else:
            if args.name not in ring.nodes:
                raise RingError(f"no node named {args.name!r} in the ring")
            new = Ring(n for n in ring.nodes.values() if n.name != args.name)
        text = render_ring(new)
        parse_ring(text, str(args.file))  # validate exactly what will be written
        write_atomic(args.file, text)
    except (RingError, OSError) as exc:
        print(f"preview-router ring: {exc}", file=sys.stderr)
        return 2
    return 0
