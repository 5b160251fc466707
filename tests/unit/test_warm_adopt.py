"""previewnode.warm.adopt: a session's directory becomes the one a warm sandbox bound,
with the same files, atomically, following no tenant's link, and untouched on failure."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from previewnode import warm
from previewnode.warm import adopt, exchange, link_tree
from previewnode.workspace import remove_tree


def tree(root: Path) -> dict[str, str]:
    """Each path under `root`: a file's text, a link's target, or `dir`."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = path.read_text()
    return out


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "sessions" / "s1" / "ws"
    (ws / "src" / "deep" / "er").mkdir(parents=True)
    (ws / "index.html").write_text("<div id=root></div>")
    (ws / "src" / "App.jsx").write_text("export default 1")
    (ws / "src" / "deep" / "er" / "x.css").write_text("a{}")
    (ws / "node_modules").symlink_to("/opt/runtime/node_modules")  # a dangling link is fine
    (ws / "secret").symlink_to("/etc/shadow")  # a tenant's link stays a link
    return ws


def test_the_session_path_ends_up_naming_the_bound_directory_with_the_same_files(
    tmp_path: Path, workspace: Path
) -> None:
    before = tree(workspace)
    bound = tmp_path / "warm" / "warm-1" / "ws"
    bound.mkdir(parents=True)
    bound_inode = bound.stat().st_ino
    old_file_inode = (workspace / "src" / "App.jsx").stat().st_ino
    adopt(workspace, bound)
    assert workspace.stat().st_ino == bound_inode  # what the sandbox's mount holds
    assert tree(workspace) == before
    assert (workspace / "src" / "App.jsx").stat().st_ino == old_file_inode  # linked, not copied
    assert (workspace / "src" / "App.jsx").stat().st_nlink == 1  # the old copy is gone
    assert not bound.exists()


def test_a_directory_that_does_not_exist_yet_is_the_bound_one_renamed(tmp_path: Path) -> None:
    bound = tmp_path / "warm" / "cache"
    bound.mkdir(parents=True)
    inode = bound.stat().st_ino
    own = tmp_path / "vite-cache" / "s1"
    own.parent.mkdir()
    adopt(own, bound)
    assert own.stat().st_ino == inode and not bound.exists()


def test_a_failed_copy_leaves_the_session_untouched_and_the_bound_directory_gone(
    tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree(workspace)
    inode = workspace.stat().st_ino
    bound = tmp_path / "warm" / "ws"
    bound.mkdir(parents=True)
    calls = 0

    def link(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:  # e.g. a file a tenant linked 65,000 times
            raise OSError(errno.EMLINK, "Too many links")
        os.link(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(warm.os, "link", link)
    with pytest.raises(OSError, match="Too many links"):
        adopt(workspace, bound)
    assert workspace.stat().st_ino == inode and tree(workspace) == before
    assert not bound.exists()


def test_exchange_swaps_two_paths_and_says_why_not(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.write_text("b")
    exchange(a, b)
    assert a.read_text() == "b" and b.is_dir()
    with pytest.raises(FileNotFoundError):
        exchange(a, tmp_path / "missing")


def test_a_deep_tree_is_copied_without_recursion(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    deep = str(src)
    for _ in range(1200):  # deeper than Python's recursion limit (made without recursing)
        deep += "/d"
        os.makedirs(deep) if deep == f"{src}/d" else os.mkdir(deep)
    Path(deep, "f").write_text("x")
    dst.mkdir()
    link_tree(src, dst)
    assert Path(str(dst) + "/d" * 1200, "f").read_text() == "x"
    for tree in (src, dst):
        remove_tree(tree)  # pytest's own cleanup recurses
