"""preview: command-line client that uploads a folder as a preview session.

    preview up DIR [--watch] ...   create a session from DIR, print its URL
    preview status ID              print the session object
    preview rm ID                  delete the session

Errors are mapped here, once: exit 1 with one line on stderr and no traceback
(argparse's usage errors keep their exit code 2). What `up` leaves out of an upload
is described in `previewclient.ignore`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from previewclient.api import Api, ApiError, RouterUnreachable
from previewclient.follow import Follower
from previewclient.report import summary_lines
from previewclient.upload import UploadError, collect, load_rules
from previewclient.watch import Watcher

DEFAULT_ROUTER = "http://127.0.0.1:8080"
LOCAL_TOKEN_FILE = Path("run") / "api-token"  # what scripts/run-local writes


class CliError(Exception):
    """A problem with the command's own input (not the router's answer)."""


def _router_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--router",
        default=os.environ.get("PREVIEW_ROUTER") or DEFAULT_ROUTER,
        help="the router's base URL (default: $PREVIEW_ROUTER or %(default)s)",
    )
    p.add_argument(
        "--token-file",
        type=Path,
        help="file whose first line is the API token "
        "(default: $PREVIEW_API_TOKEN, the token; else ./run/api-token if it exists)",
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="preview", description="Upload a folder as a live Vite preview."
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="create a preview session from a folder")
    up.add_argument("dir", type=Path, metavar="DIR")
    _router_arg(up)
    up.add_argument("--watch", action="store_true", help="push changes until Ctrl-C")
    up.add_argument("--session-id", help="a client-chosen session ID ([A-Za-z0-9_-], no '--')")
    up.add_argument("--affinity-key", help="e.g. a project id: its sessions share a node")
    up.add_argument("--ttl", type=float, metavar="SECONDS", help="session lifetime")
    up.add_argument(
        "--include-env",
        action="store_true",
        help="also upload .env and .env.* files (left out by default: they often hold secrets)",
    )

    status = sub.add_parser("status", help="print a session object as JSON")
    status.add_argument("session_id", metavar="ID")
    _router_arg(status)

    rm = sub.add_parser("rm", help="delete a session")
    rm.add_argument("session_id", metavar="ID")
    _router_arg(rm)
    return top


def _token(args: argparse.Namespace) -> str | None:
    """The API token: --token-file, else $PREVIEW_API_TOKEN, else run/api-token (what
    scripts/run-local writes) when it exists, else none."""
    if args.token_file is None:
        env = os.environ.get("PREVIEW_API_TOKEN")
        if env:
            return env
        if not LOCAL_TOKEN_FILE.is_file():
            return None
    path: Path = args.token_file or LOCAL_TOKEN_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CliError(f"cannot read the token file {args.token_file}: {exc.strerror}") from None
    for line in lines:
        token = line.strip()
        if token and not token.startswith("#"):
            return token
    raise CliError(f"the token file {args.token_file} holds no token")


def _out(line: str) -> None:
    print(line, flush=True)


def cmd_up(api: Api, args: argparse.Namespace) -> int:
    root: Path = args.dir
    stamps, files = collect(root, load_rules(root, args.include_env))
    body: dict[str, Any] = {"files": files}
    if args.session_id:
        body["sessionId"] = args.session_id
    if args.affinity_key:
        body["affinityKey"] = args.affinity_key
    if args.ttl is not None:
        body["ttlSeconds"] = args.ttl
    session = api.create(body)
    for line in summary_lines(session, uploaded=len(files)):
        _out(line)
    if session.get("status") == "failed":
        raise CliError(f"session {session.get('sessionId')} failed: {session.get('error', '?')}")
    if not args.watch:
        return 0
    sid = str(session["sessionId"])
    _out(f"watching {root} (Ctrl-C stops watching; the session stays)")
    watcher = Watcher(api, sid, root, stamps, include_env=args.include_env)
    Follower(api, sid, watcher.say, watcher.warn).start()
    try:
        watcher.run()
    except KeyboardInterrupt:
        _out(f"stopped watching; remove the session with: preview rm {sid}")
    except ApiError as exc:  # the session went away while watching
        raise CliError(describe(exc, sid)) from None
    return 0


def cmd_status(api: Api, args: argparse.Namespace) -> int:
    _out(json.dumps(api.session(args.session_id), indent=2))
    return 0


def cmd_rm(api: Api, args: argparse.Namespace) -> int:
    session = api.delete(args.session_id)
    _out(f"deleted {session.get('sessionId', args.session_id)}")
    return 0


def describe(exc: ApiError, session_id: str | None) -> str:
    if exc.code == "unknown_session" or (exc.status == 404 and session_id and exc.code is None):
        return f"no session {session_id} ({exc.status} {exc.code or 'not found'})"
    if exc.code == "session_gone":
        return f"session {session_id} is gone: expired or deleted ({exc.status} {exc.code})"
    if exc.code == "unauthorized":
        return f"the router wants an API token (--token-file or $PREVIEW_API_TOKEN): {exc}"
    return f"the router refused: {exc}"


def _check_router(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--router must be an http(s) URL such as {DEFAULT_ROUTER}, not {url!r}")
    return url


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    commands = {"up": cmd_up, "status": cmd_status, "rm": cmd_rm}
    try:
        api = Api(_check_router(args.router), _token(args))
        return commands[args.command](api, args)
    except RouterUnreachable as exc:
        message = str(exc)
    except ApiError as exc:
        message = describe(exc, getattr(args, "session_id", None))
    except (UploadError, CliError) as exc:
        message = str(exc)
    except KeyboardInterrupt:
        print("preview: interrupted", file=sys.stderr)
        return 130
    print(f"preview: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
