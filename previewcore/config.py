"""Command-line flags, each also settable as `PREVIEW_{FLAG}` in the environment (CONTRACT §1).

The flag wins over the environment; the environment wins over the default.
Shared by `preview-router` and `preview-node`, so both spell flags the same way.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any


def env_name(flag: str) -> str:
    return "PREVIEW_" + flag.lstrip("-").replace("-", "_").upper()


class EnvParser(argparse.ArgumentParser):
    """An ArgumentParser whose `flag` defaults come from the environment."""

    def flag(
        self,
        name: str,
        *,
        default: Any = None,
        type: Callable[[str], Any] = str,
        help: str,
        required: bool = False,
        choices: Sequence[str] | None = None,
    ) -> None:
        env = env_name(name)
        raw = os.environ.get(env)
        value = type(raw) if raw is not None else default
        suffix = f" (env {env}" + (f"; default {default}" if default is not None else "") + ")"
        self.add_argument(
            name,
            default=value,
            type=type,
            help=help + suffix,
            required=required and value is None,
            choices=choices,
        )


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} must be HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def preview_domain(text: str) -> str:
    """A DNS name under which each session gets its own host (`{id}.{domain}`)."""
    name = text.strip().lower().rstrip(".")
    labels = name.split(".")
    if not name or any(
        not label or len(label) > 63 or not all(c.isalnum() or c == "-" for c in label)
        for label in labels
    ):
        raise argparse.ArgumentTypeError(f"{text!r} is not a DNS name")
    return name


def add_preview_domain(parser: EnvParser) -> None:
    parser.flag(
        "--preview-domain",
        type=preview_domain,
        help="subdomain mode: session {id} is served at {id}.DOMAIN (unset: path mode)",
    )


def add_common(parser: EnvParser) -> None:
    parser.flag("--log-format", default="json", choices=["json", "text"], help="log line format")
    parser.flag("--log-level", default="info", help="debug, info, warning or error")
