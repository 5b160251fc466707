"""The dependency cache's collector: which installed sets go (pure), and the IO around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from previewnode.cache_gc import UNUSED_SECONDS, CacheSet, choose, record_install, remove, scan

NOW = 1_000_000.0


def s(key: str, size: int, age: float) -> CacheSet:
    return CacheSet(key, size, NOW - age)


@pytest.mark.parametrize(
    ("sets", "in_use", "cap", "expected"),
    [
        # under the cap, recently used: all kept
        ([s("a", 10, 5), s("b", 10, 50)], set(), 100, []),
        # unused for longer than UNUSED_SECONDS: removed even under the cap
        ([s("a", 10, UNUSED_SECONDS + 1), s("b", 10, 5)], set(), 100, ["a"]),
        # over the cap: least recently used first, until under
        ([s("a", 40, 5), s("b", 40, 50), s("c", 40, 20)], set(), 90, ["b"]),
        ([s("a", 40, 5), s("b", 40, 50), s("c", 40, 20)], set(), 40, ["b", "c"]),
        # a set a registered session names is never removed, however old or big
        ([s("a", 500, UNUSED_SECONDS * 9), s("b", 10, 5)], {"a"}, 100, ["b"]),
        ([s("a", 500, 5)], {"a"}, 1, []),
    ],
)
def test_which_sets_go(
    sets: list[CacheSet], in_use: set[str], cap: int, expected: list[str]
) -> None:
    assert choose(sets, in_use, cap, NOW) == expected


def test_scan_sees_complete_sets_with_their_recorded_size_and_remove_takes_them(
    tmp_path: Path,
) -> None:
    done = tmp_path / "k1"
    (done / "node_modules" / "x").mkdir(parents=True)
    (done / "node_modules" / "x" / "index.js").write_text("1234567890")
    (done / "node_modules" / "link").symlink_to("/etc")  # never followed, never counted
    (done / ".complete").write_text("t")
    record_install(done)
    (tmp_path / "k2" / "node_modules").mkdir(parents=True)  # an install that never finished
    (tmp_path / ".staging-k3-1").mkdir()
    (found,) = scan(tmp_path)
    assert found.key == "k1" and 10 <= found.size < 100 and found.last_used > 0
    remove(tmp_path, "k1")
    assert not done.exists() and not list(tmp_path.glob(".trash-*"))
    remove(tmp_path, "k1")  # already gone: nothing to do
