"""`preview-node` (placeholder until the node lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("preview-node: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
