#!/usr/bin/env python3
"""Soak: two routers, two nodes, mixed traffic for 10 minutes (see bench/README.md).

The code lives in `bench/soak/` (one module per concern, and the report) and
`bench/harness/` (shared); this file puts the repository first on `sys.path`, so its
packages are the ones measured.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.soak.main import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
