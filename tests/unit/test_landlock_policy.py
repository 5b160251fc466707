"""landlock_policy(), confine_argv() and the dev server's Landlock command (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from previewnode import confine, sandbox
from previewnode.devserver import (
    V8_FLAGS,
    child_environment,
    command,
    launcher_config,
)
from previewnode.sandbox import (
    Mounts,
    Sandbox,
    SandboxUnavailable,
    confine_argv,
    landlock_policy,
)
from tests.support.devconfig import dev_config

MOUNTS = Mounts(
    workspace=Path("/data/sessions/s1/ws"),
    cache_dir=Path("/data/vite-cache/s1"),
    read_only=(Path("/opt/runtime/node_modules"), Path("/opt/runtime"), Path("/data/deps/k1")),
)


def test_only_the_sessions_own_dirs_are_writable() -> None:
    policy = landlock_policy(MOUNTS, 41234)
    assert policy["rw"] == ["/data/sessions/s1/ws", "/data/vite-cache/s1"]
    assert policy["port"] == 41234


def test_nothing_else_of_the_data_dir_and_no_proc_sys_tmp_or_home_is_granted() -> None:
    policy = landlock_policy(MOUNTS, 1)
    granted = [*policy["ro"], *policy["rw"], *policy["files"]]  # type: ignore[misc]
    assert [p for p in granted if p.startswith("/data")] == [
        "/data/deps/k1",
        "/data/sessions/s1/ws",
        "/data/vite-cache/s1",
    ]
    assert not [p for p in granted if p.startswith(("/proc", "/sys", "/tmp", "/run", "/home"))]
    assert "/" not in granted and "/etc" not in granted
    etc = {p for p in granted if p.startswith("/etc")}
    assert etc <= {"/etc/ssl", "/etc/alternatives", "/etc/ld.so.cache"}  # no passwd, hosts


def test_read_only_trees_are_granted_once_and_the_system_read_only() -> None:
    policy = landlock_policy(MOUNTS, 1)
    ro = policy["ro"]
    assert isinstance(ro, list)
    assert "/usr" in ro and "/opt/runtime" in ro and "/opt/runtime/node_modules" not in ro
    assert not set(ro) & set(policy["rw"])  # type: ignore[arg-type]


def test_devices_are_single_files_and_only_dev_null_is_writable() -> None:
    files = landlock_policy(MOUNTS, 1)["files"]
    assert isinstance(files, dict)
    assert {k: v for k, v in files.items() if k.startswith("/dev")} == {
        "/dev/null": "rw",
        "/dev/zero": "r",
        "/dev/urandom": "r",
        "/dev/random": "r",
    }


def test_read_write_rights_never_include_device_nodes() -> None:
    assert not confine.READ_WRITE & (confine.FS_MAKE_CHAR | confine.FS_MAKE_BLOCK)
    assert confine.READ_ONLY == confine.FS_EXECUTE | confine.FS_READ_FILE | confine.FS_READ_DIR


def test_confine_runs_isolated_and_reads_back_its_policy_and_the_command_unchanged() -> None:
    policy = landlock_policy(MOUNTS, 41234)
    argv = confine_argv("/usr/bin/python3", policy, ["node", "launcher.mjs", "--", "x y"])
    assert argv[:3] == ["/usr/bin/python3", "-I", "-S"]
    assert argv[3].endswith("previewnode/confine.py")
    assert confine.parse_args(argv[4:]) == (policy, ["node", "launcher.mjs", "--", "x y"])


def test_a_malformed_confine_command_line_is_refused() -> None:
    for argv in (["--ro"], ["--ro", "/usr"], ["--env", "X", "--", "true"], ["--port", "x"]):
        try:
            confine.parse_args(argv)
        except ValueError:
            continue
        raise AssertionError(argv)


def test_a_landlocked_dev_server_listens_on_the_port_the_node_chose(tmp_path: Path) -> None:
    cfg = dev_config(tmp_path, Sandbox("landlock", "/usr/bin/python3"))
    launcher = launcher_config(cfg, 41234)
    assert launcher["port"] == 41234 and launcher["listenFd"] is None
    assert launcher["ownConfig"] is True and launcher["bundleConfigBeside"] is True
    argv = command(cfg, 41234)
    # a shell joins cgroups and sets rlimits, then becomes confine.py (exec, not a parent)
    assert argv[:2] == ["/bin/sh", "-c"] and argv[2].endswith('exec "$@"')
    python = argv.index("/usr/bin/python3")
    policy, launcher_argv = confine.parse_args(argv[python + 4 :])
    assert policy["port"] == 41234
    assert policy["rw"] == [str(cfg.workspace), str(cfg.cache_dir)]
    assert launcher_argv == ["/usr/bin/node", *V8_FLAGS, str(cfg.runtime_dir / "launcher.mjs")]
    env = child_environment(cfg)
    assert env["TMPDIR"] == str(cfg.cache_dir / "tmp")  # inside its cache: no /tmp
    assert env["HOME"].startswith(str(cfg.cache_dir))


def test_bubblewrap_still_listens_on_its_socket(tmp_path: Path) -> None:
    cfg = dev_config(tmp_path, Sandbox("bwrap", "/usr/bin/bwrap"))
    launcher = launcher_config(cfg)
    # the dev server sees its own directories at the same paths in every sandbox
    assert launcher["port"] == 0 and launcher["listenFd"] is None  # none passed here
    assert launcher_config(cfg, 0, 17)["listenFd"] == 17
    assert launcher["root"] == "/preview/app" and launcher["cacheDir"] == "/preview/cache/vite"
    assert cfg.socket_path == tmp_path / "sock" / "dev.sock"  # where the node connects
    assert str(cfg.socket_path) not in command(cfg)  # never bound into the sandbox
    assert launcher["bundleConfigBeside"] is False
    env = child_environment(cfg)
    assert "TMPDIR" not in env and env["HOME"] == "/preview/cache/home"
    assert "/usr/bin/bwrap" in command(cfg)


def probes(monkeypatch: pytest.MonkeyPatch, bwrap: str | None, landlock: str | None) -> list[str]:
    """Fake both probes (None: works, else why not); the mechanisms tried, in order."""
    tried: list[str] = []
    monkeypatch.setattr(sandbox.shutil, "which", lambda _name: "/usr/bin/bwrap")

    def probe_bwrap(_binary: str) -> str | None:
        tried.append("bwrap")
        return bwrap

    def probe_landlock(_python: str) -> str | None:
        tried.append("landlock")
        return landlock

    monkeypatch.setattr(sandbox, "probe", probe_bwrap)
    monkeypatch.setattr(sandbox, "probe_landlock", probe_landlock)
    return tried


def test_auto_prefers_bubblewrap_then_landlock_then_none(monkeypatch: pytest.MonkeyPatch) -> None:
    tried = probes(monkeypatch, None, None)
    assert sandbox.choose("auto") == Sandbox("bwrap", "/usr/bin/bwrap") and tried == ["bwrap"]
    probes(monkeypatch, "no user namespaces", None)
    chosen = sandbox.choose("required")
    assert chosen is not None and chosen.mechanism == "landlock" and not chosen.listens_on_socket
    probes(monkeypatch, "no user namespaces", "Landlock ABI 3")
    assert sandbox.choose("auto") is None
    with pytest.raises(SandboxUnavailable, match="bwrap: no user namespaces; landlock: Landlock"):
        sandbox.choose("required")


def test_a_forced_mechanism_is_the_only_one_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    tried = probes(monkeypatch, None, "no")
    with pytest.raises(SandboxUnavailable):
        sandbox.choose("required", "landlock")
    assert tried == ["landlock"]
    tried = probes(monkeypatch, "no", None)
    assert sandbox.choose("auto", "bwrap") is None and tried == ["bwrap"]
    assert sandbox.choose("off", "landlock") is None
