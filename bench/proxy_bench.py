#!/usr/bin/env python3
"""Proxy benchmark: direct upstream vs nginx vs preview-router (see bench/README.md).

The code lives in `bench/proxy/` (phases and report) and `bench/harness/` (shared); this
file puts the repository first on `sys.path`, so its packages are the ones measured.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.proxy.main import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
