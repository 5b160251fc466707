"""`preview-node`: parse flags, then run the node until SIGTERM."""

from __future__ import annotations

import sys

from previewnode.config import build_parser, from_args


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    import trio

    from previewnode.service import NodeService
    from proxycore import logs

    logs.setup(args.log_format, args.log_level)
    try:
        service = NodeService(from_args(vars(args)))
    except (OSError, ValueError) as exc:
        print(f"preview-node: {exc}", file=sys.stderr)
        return 2
    trio.run(service.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
