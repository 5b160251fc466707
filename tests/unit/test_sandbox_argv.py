"""bwrap_argv(): what a sandboxed dev server may see, spelled out (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from previewnode.sandbox import TMP_BYTES, Mounts, bwrap_argv, supervised

MOUNTS = Mounts(
    workspace=Path("/data/sessions/s1/ws"),
    cache_dir=Path("/data/vite-cache/s1"),
    read_only=(Path("/opt/runtime/node_modules"), Path("/opt/runtime"), Path("/usr/bin")),
)
CMD = ["/usr/bin/node", "/opt/runtime/launcher.mjs", "{}"]


def pairs(argv: list[str], flag: str) -> list[tuple[str, str]]:
    return [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == flag]


def test_every_namespace_is_new_and_the_sandbox_dies_with_its_parent() -> None:
    argv = bwrap_argv("/usr/bin/bwrap", MOUNTS, CMD)
    assert argv[0] == "/usr/bin/bwrap"
    for flag in ("--unshare-all", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert "--share-net" not in argv  # --unshare-all includes the network


def test_only_the_sessions_own_dirs_are_writable_and_nothing_else_of_the_data_dir_is_bound() -> (
    None
):
    argv = bwrap_argv("/usr/bin/bwrap", MOUNTS, CMD)
    writable = dict(pairs(argv, "--bind"))
    # each at a fixed path inside, whatever its host path: any sandbox fits any session;
    # no listener's directory (the node passes the listener in: a directory the sandbox
    # could write is one where it could plant a link for the node to connect through)
    assert writable == {
        str(MOUNTS.workspace): "/preview/app",
        str(MOUNTS.cache_dir): "/preview/cache",
    }
    bound = set(writable) | {src for src, _ in pairs(argv, "--ro-bind")}
    assert not [p for p in bound if p.startswith("/data") and p not in writable]
    assert all(src == dst for src, dst in pairs(argv, "--ro-bind"))


def test_nothing_read_only_is_bound_where_the_sessions_own_directories_go() -> None:
    hidden = Mounts(MOUNTS.workspace, MOUNTS.cache_dir, (Path("/preview/runtime"),))
    with pytest.raises(ValueError, match="hidden"):
        bwrap_argv("/usr/bin/bwrap", hidden, CMD)


def test_read_only_paths_inside_another_are_bound_once() -> None:
    ro = [src for src, _ in pairs(bwrap_argv("/usr/bin/bwrap", MOUNTS, CMD), "--ro-bind")]
    assert "/opt/runtime" in ro and "/opt/runtime/node_modules" not in ro
    assert ro.count("/usr") == 1 and "/usr/bin" not in ro


def test_root_is_read_only_tmp_private_and_the_command_runs_in_the_workspace() -> None:
    argv = bwrap_argv("/usr/bin/bwrap", MOUNTS, CMD)
    assert argv[argv.index("--remount-ro") + 1] == "/"
    tmp = argv.index("--tmpfs")
    assert argv[tmp + 1] == "/tmp"
    assert argv[tmp - 2 : tmp] == ["--size", str(TMP_BYTES)]  # sized: a tmpfs is memory
    assert argv[argv.index("--chdir") + 1] == "/preview/app"
    assert argv[argv.index("--") + 1 :] == CMD
    # later binds of the session's dirs come after /tmp's tmpfs, or /tmp would hide them
    assert argv.index("--tmpfs") < argv.index(str(MOUNTS.cache_dir))


def test_the_shell_parent_passes_stdin_on_and_runs_argv_unchanged() -> None:
    argv = supervised(["/usr/bin/bwrap", "--", "x y"])
    assert argv[:2] == ["/bin/sh", "-c"] and "<&3" in argv[2]
    assert argv[3:] == ["sandbox", "/usr/bin/bwrap", "--", "x y"]
