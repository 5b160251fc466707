"""The `preview` client's pure parts: what is left out of an upload, and what a watch pushes."""

from __future__ import annotations

from pathlib import Path

import pytest

from previewclient.ignore import IgnoreRules, parse_gitignore
from previewclient.upload import Limits, Stamp, UploadError, scan
from previewclient.watch import diff


def test_gitignore_patterns_follow_simple_fnmatch_rules() -> None:
    rules = IgnoreRules(parse_gitignore("*.log\n!keep.log\nout/\n/top.txt\nsrc/gen/*.js\n"))
    assert rules.skips_file("a/b/debug.log")
    assert rules.skips_folder("out") and rules.skips_folder("src/out")
    assert not rules.skips_file("out")  # `out/` names folders only
    assert rules.skips_file("top.txt") and not rules.skips_file("docs/top.txt")
    assert rules.skips_file("src/gen/a.js") and not rules.skips_file("src/a.js")
    assert rules.skips_file(".env") and not IgnoreRules(include_env=True).skips_file(".env.local")
    assert rules.skips_folder(".vite") and rules.skips_folder("packages/x/node_modules")


def test_client_side_limits_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x" * 11)
    (tmp_path / "b.txt").write_text("y")
    with pytest.raises(UploadError, match=r"a\.txt is 11 bytes; at most 10 bytes"):
        scan(tmp_path, IgnoreRules(), Limits(max_file_bytes=10))
    with pytest.raises(UploadError, match="more than 1 files"):
        scan(tmp_path, IgnoreRules(), Limits(max_files=1))


def test_watch_diff_lists_changed_and_deleted_paths() -> None:
    before = {"a": Stamp(1, 1), "b": Stamp(1, 1), "c": Stamp(1, 1)}
    after = {"a": Stamp(1, 1), "b": Stamp(2, 1), "d": Stamp(1, 5)}
    change = diff(before, after)
    assert (change.changed, change.deleted) == (["b", "d"], ["c"])
    assert not diff(after, dict(after))
