"""The dev server's memory settings: V8 flags on the launcher's node argv, allocator
settings in its environment, whichever way it is confined (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from previewnode.devserver import MIMALLOC_ENV, child_environment, command
from previewnode.sandbox import Sandbox
from tests.support.devconfig import dev_config

SANDBOXES = {
    "none": None,
    "bwrap": Sandbox("bwrap", "/usr/bin/bwrap"),
    "landlock": Sandbox("landlock", "/usr/bin/python3"),
}


@pytest.mark.parametrize("mechanism", sorted(SANDBOXES))
def test_node_gets_a_capped_young_generation_before_the_launcher(
    tmp_path: Path, mechanism: str
) -> None:
    cfg = dev_config(tmp_path, SANDBOXES[mechanism])
    argv = command(cfg, 41234)
    launcher = str(cfg.runtime_dir / "launcher.mjs")
    at = argv.index(launcher)
    # V8 reads its flags before the script: after it they would be the launcher's argv
    assert argv[at - 2 : at] == ["/usr/bin/node", "--max-semi-space-size=2"], argv


@pytest.mark.parametrize("mechanism", sorted(SANDBOXES))
def test_memory_settings_reach_the_dev_server_and_nothing_it_spawns_inherits_v8_flags(
    tmp_path: Path, mechanism: str
) -> None:
    env = child_environment(dev_config(tmp_path, SANDBOXES[mechanism]))
    assert {k: env[k] for k in MIMALLOC_ENV} == MIMALLOC_ENV
    assert "NODE_OPTIONS" not in env
