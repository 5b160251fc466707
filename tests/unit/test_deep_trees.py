"""Trees a tenant's dev server shapes: deeper than Python's recursion limit, deeper than
PATH_MAX, with links to the node's files. Walking, sizing and removing them must neither
raise (os.walk and shutil.rmtree recurse: a RecursionError in the sweep ended the node)
nor follow a link."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from previewnode.warm import link_tree
from previewnode.workspace import disk_used, file_sizes, read_tree, remove_tree, walk_files

DEPTH = 2100  # "d/" each: past PATH_MAX (4096) and past the recursion limit (1000)


def deep_tree(root: Path, depth: int = DEPTH) -> None:
    """root/d/d/.../d/f, made by descriptor (no path this long can be named)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"x" * 10)
        os.close(leaf)
    finally:
        os.close(fd)


def test_a_tree_past_path_max_is_removed_whole(tmp_path: Path) -> None:
    deep_tree(tmp_path / "ws")
    (tmp_path / "ws" / "top.txt").write_text("t")
    remove_tree(tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


def test_removing_follows_no_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("k")
    ws = tmp_path / "ws"
    (ws / "a").mkdir(parents=True)
    (ws / "a" / "link").symlink_to(outside, target_is_directory=True)
    (ws / "b").symlink_to(outside / "keep")
    remove_tree(ws)
    assert not ws.exists() and (outside / "keep").read_text() == "k"
    remove_tree(tmp_path / "missing")  # nothing there: nothing to do
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    remove_tree(tmp_path / "link")  # the link itself goes, not what it names
    assert not (tmp_path / "link").is_symlink() and (outside / "keep").exists()


def test_sizes_of_a_tree_past_path_max_count_as_over_any_limit(tmp_path: Path) -> None:
    deep_tree(tmp_path / "ws")
    (tmp_path / "ws" / "top.txt").write_text("top")
    assert disk_used([tmp_path / "ws"]) == sys.maxsize  # the sweep stops such a session
    assert file_sizes(tmp_path / "ws") == {"top.txt": 3}  # what can be named, for the API
    assert read_tree(tmp_path / "ws") == {"top.txt": b"top"}
    remove_tree(tmp_path / "ws")


def test_a_tree_past_the_recursion_limit_is_walked(tmp_path: Path) -> None:
    deep_tree(tmp_path / "ws", depth=1200)
    (found,) = [path for path, _ in walk_files(tmp_path / "ws")]
    assert found.name == "f" and len(found.parts) > 1200
    assert disk_used([tmp_path / "ws"]) == 10
    linked = tmp_path / "copy"
    linked.mkdir()
    link_tree(tmp_path / "ws", linked)  # a warm sandbox's adoption of such a workspace
    assert disk_used([linked]) == 10
    for tree in (tmp_path / "ws", linked):
        remove_tree(tree)  # pytest's own cleanup recurses


def test_walking_follows_no_link_and_skips_what_it_is_told(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s")
    ws = tmp_path / "ws"
    (ws / "node_modules" / "x").mkdir(parents=True)
    (ws / "node_modules" / "x" / "i.js").write_text("1")
    (ws / "out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (ws / "s").symlink_to(tmp_path / "outside" / "secret")
    (ws / "a.js").write_text("a")
    assert file_sizes(ws) == {"a.js": 1}
    assert disk_used([ws]) == 2  # node_modules counted, links never
