"""Every flag the chart passes to a container is one the program accepts.

The chart and the CLIs are written apart; this keeps them from drifting. The flags are
read from `--help` of the real entry points (`python -m router`, `python -m previewnode`).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {"preview-router": "router", "preview-node": "previewnode"}
WORKLOADS = {"preview-router": "Deployment", "preview-node": "StatefulSet"}


@functools.cache
def help_flags(module: str) -> frozenset[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREVIEW_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"python -m {module} --help failed:\n{result.stderr}"
    return frozenset(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", result.stdout))


def rendered_flags(args: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


@pytest.mark.parametrize("program", sorted(PROGRAMS))
@pytest.mark.parametrize("values_file", ["defaults", "ci-values"])
def test_every_rendered_flag_is_in_the_programs_help(
    render: Any,
    ci_values: dict[str, Any],
    program: str,
    values_file: str,
) -> None:
    rendered = render(ci_values if values_file == "ci-values" else None)
    args = rendered.container(WORKLOADS[program])["args"]
    assert args[0] == program
    flags = rendered_flags(args)
    assert flags, "no flags rendered"
    assert flags - help_flags(PROGRAMS[program]) == set(), f"{program} --help lacks these flags"


def test_help_parser_reads_flags_from_argparse_output() -> None:
    sample = """usage: preview-router [-h] [--listen HOST:PORT] [--ring FILE]
  --api-token-file FILE  optional (env PREVIEW_API_TOKEN_FILE)
  --max-body-bytes N     limit (default 33554432)"""
    found = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", sample))
    assert found == {"--listen", "--ring", "--api-token-file", "--max-body-bytes"}
