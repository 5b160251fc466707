"""The per-session limits' tables: cgroup files and values, rlimits, the shell prelude,
and discovery over a fake cgroup tree."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from previewnode.limits import (
    Groups,
    SessionLimits,
    discover,
    parse_self_cgroup,
    settings,
    shell_prelude,
    ulimit_args,
)
from previewnode.sandbox import supervised

LIMITS = SessionLimits(memory_bytes=256 * 1024**2, max_pids=64, cpus=0.5)


def test_v1_settings_spread_over_three_controllers() -> None:
    assert settings(1, LIMITS) == {
        "memory": [("memory.limit_in_bytes", str(256 * 1024**2))],
        "pids": [("pids.max", "64")],
        "cpu": [("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "50000")],
    }


def test_v2_settings_share_one_group_and_forbid_swap() -> None:
    assert settings(2, LIMITS) == {
        "": [
            ("memory.max", str(256 * 1024**2)),
            ("memory.swap.max", "0"),
            ("pids.max", "64"),
            ("cpu.max", "50000 100000"),
        ]
    }


@pytest.mark.parametrize(("version", "expected"), [(1, "-1"), (2, "max 100000")])
def test_zero_cpus_means_unthrottled(version: int, expected: str) -> None:
    table = settings(version, SessionLimits(cpus=0))  # type: ignore[arg-type]
    cpu = dict(table["cpu" if version == 1 else ""])
    assert cpu["cpu.cfs_quota_us" if version == 1 else "cpu.max"] == expected


@pytest.mark.parametrize(
    ("hard", "nofile", "blocks"),
    [
        ({"nofile": resource.RLIM_INFINITY, "fsize": resource.RLIM_INFINITY}, "8192", "2097152"),
        ({"nofile": 1024, "fsize": resource.RLIM_INFINITY}, "1024", "2097152"),  # never above
        ({"nofile": 65536, "fsize": 512 * 1000}, "8192", "1000"),
    ],
)
def test_rlimits_stay_under_the_inherited_hard_limits(
    hard: dict[str, int], nofile: str, blocks: str
) -> None:
    assert ulimit_args(SessionLimits(), hard) == [("-c", "0"), ("-n", nofile), ("-f", blocks)]


def test_self_cgroup_lines_map_each_controller() -> None:
    text = "9:name=systemd:/\n8:pids:/\n4:memory:/pod/abc\n2:cpu,cpuacct:/x\n0::/unified\n"
    assert parse_self_cgroup(text) == {
        "name=systemd": "/",
        "pids": "/",
        "memory": "/pod/abc",
        "cpu": "/x",
        "cpuacct": "/x",
        "": "/unified",
    }


def test_the_prelude_joins_every_group_then_sets_rlimits_in_a_real_shell(
    tmp_path: Path,
) -> None:
    procs = [tmp_path / "it's" / "cgroup.procs", tmp_path / "b" / "cgroup.procs"]
    for p in procs:
        p.parent.mkdir()
    prelude = shell_prelude(procs, [("-c", "0"), ("-n", "100")])
    done = subprocess.run(
        supervised(["sh", "-c", "ulimit -n; echo $PPID"], prelude),
        capture_output=True,
        text=True,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    nofile, parent = done.stdout.split()
    assert nofile == "100"
    for p in procs:  # the shell parent wrote its own pid, so its children are inside
        assert p.read_text().strip() == parent


def test_a_group_that_cannot_be_joined_fails_the_start(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "cgroup.procs"
    done = subprocess.run(
        supervised(["true"], shell_prelude([missing], [])),
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 97


def fake_v1(root: Path, mounted: tuple[str, ...]) -> Path:
    for controller in mounted:
        (root / controller / "pod").mkdir(parents=True)
    self_cgroup = root / "self"
    self_cgroup.write_text("4:memory:/pod\n8:pids:/pod\n1:cpu:/pod\n0::/\n")
    return self_cgroup


def test_v1_needs_memory_and_pids_but_not_cpu(tmp_path: Path) -> None:
    self_cgroup = fake_v1(tmp_path, mounted=("memory", "cpu"))
    assert discover(tmp_path, self_cgroup) is None
    (tmp_path / "pids" / "pod").mkdir(parents=True)
    (tmp_path / "cpu" / "pod").rmdir()
    hierarchy = discover(tmp_path, self_cgroup)
    assert hierarchy is not None and set(hierarchy.parents) == {"memory", "pids"}


def test_v1_discovery_makes_one_parent_per_controller_and_groups_get_their_values(
    tmp_path: Path,
) -> None:
    self_cgroup = fake_v1(tmp_path, mounted=("memory", "pids", "cpu"))
    hierarchy = discover(tmp_path, self_cgroup)
    assert hierarchy is not None and hierarchy.name == "cgroup-v1"
    assert not list((tmp_path / "pids" / "pod").iterdir())  # discovery only reads
    tag = f"preview-node-{os.getpid()}"
    assert hierarchy.parents == {c: tmp_path / c / "pod" / tag for c in ("memory", "pids", "cpu")}
    stale = tmp_path / "pids" / "pod" / "preview-node-999999999" / "old-session"
    stale.mkdir(parents=True)
    groups = Groups(hierarchy, LIMITS)  # removes empty groups of nodes that are gone
    assert not stale.parent.exists()
    procs = groups.make("s1")
    assert procs == [tmp_path / c / "pod" / tag / "s1" / "cgroup.procs" for c in hierarchy.parents]
    assert (tmp_path / "pids" / "pod" / tag / "s1" / "pids.max").read_text() == "64"
    assert (tmp_path / "cpu" / "pod" / tag / "s1" / "cpu.cfs_quota_us").read_text() == "50000"
    for p in procs:  # a real cgroup has these; a fake dir needs them gone to rmdir
        for f in p.parent.iterdir():
            f.unlink()
    groups.remove("s1")
    assert not (tmp_path / "memory" / "pod" / tag / "s1").exists()


def test_v2_needs_a_delegated_subtree(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "pod").mkdir()
    (tmp_path / "pod" / "cgroup.subtree_control").write_text("cpu\n")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/pod\n")
    assert discover(tmp_path, self_cgroup) is None  # memory and pids not delegated
    (tmp_path / "pod" / "cgroup.subtree_control").write_text("cpu memory pids\n")
    hierarchy = discover(tmp_path, self_cgroup)
    assert hierarchy is not None and hierarchy.name == "cgroup-v2"
    parent = hierarchy.parents[""]
    assert parent.parent == tmp_path / "pod" and not parent.exists()  # discovery only reads
    Groups(hierarchy, LIMITS)
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"


def test_v2_in_a_container_moves_its_processes_to_a_leaf_then_enables_controllers(
    tmp_path: Path,
) -> None:
    """A pod's own group holds the node (and init) and enables nothing: cgroup v2 lets a
    group enable controllers for children only with no processes of its own."""
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    pod = tmp_path / "pod"
    pod.mkdir()
    (pod / "cgroup.controllers").write_text("cpu io memory pids\n")
    (pod / "cgroup.subtree_control").write_text("\n")
    (pod / "cgroup.procs").write_text("1\n4242\n")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/pod\n")
    hierarchy = discover(tmp_path, self_cgroup)
    assert hierarchy is not None and hierarchy.leaf == pod / "preview-node-leaf"
    assert not hierarchy.leaf.exists()  # discovery only reads
    moved: list[str] = []
    leaf_procs = hierarchy.leaf / "cgroup.procs"
    real_write = Path.write_text

    def recording(self: Path, data: str, *args: object, **kw: object) -> int:
        if self == leaf_procs:
            moved.append(data)
        return real_write(self, data)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "write_text", recording)
        Groups(hierarchy, LIMITS)
    assert moved == ["1", "4242"]  # every process of the pod's group, one write each
    assert (pod / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert (hierarchy.parents[""] / "cgroup.subtree_control").read_text() == ("+memory +pids +cpu")
