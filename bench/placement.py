#!/usr/bin/env python3
"""Placement at scale, simulated: 1,000 nodes, 1,000,000 creates, no sockets (bench/README.md).

The code lives in `bench/place/`; this file puts the repository first on `sys.path`, so
its `router` package is the one measured.

    .venv/bin/python bench/placement.py [--nodes 1000] [--sessions 1000000] [--only bounded]
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.place.main import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
