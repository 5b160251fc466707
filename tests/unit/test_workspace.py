"""previewnode.workspace: a tenant's paths and contents, checked before a byte is written.

Only the pure checks (`check_path`, `validate_files`, `is_ignored`, `decode_content`);
writing trees is covered where the node runs.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from previewcore.errors import InvalidContent
from previewnode.workspace import (
    MAX_DEPTH,
    Limits,
    apply_update,
    check_path,
    check_totals,
    decode_content,
    file_sizes,
    is_ignored,
    validate_files,
    write_tree,
)
from proxycore.errors import TooLarge

HOSTILE_PATHS = [
    # empty, absolute, dot and empty segments
    "",
    "/",
    "/etc/passwd",
    "//etc/passwd",
    ".",
    "..",
    "../x",
    "../../etc/passwd",
    "a/..",
    "a/../../b",
    "a/../b",
    "./a",
    "a/./b",
    "a//b",
    "a/",
    "src/",
    # backslashes (Windows separators) and drive letters written with them
    "a\\b",
    "..\\..\\x",
    "C:\\Windows\\x",
    "\\\\server\\share\\x",
    # NUL and control characters
    "a\x00b",
    "a.js\x00.png",
    "a\nb",
    "a\rb",
    "a\tb",
    "a\x1bb",
    "a\x1fb",
    "a\x7fb",
    # the dependency tree and git are the node's
    "node_modules",
    "node_modules/react/index.js",
    "src/node_modules/x.js",
    "a/b/node_modules/c",
    ".git",
    ".git/config",
    ".git/hooks/post-checkout",
    # files package managers read (and may run) at install time
    ".npmrc",
    "src/.npmrc",
    ".pnpmfile.cjs",
    "pkg/.pnpmfile.cjs",
    ".yarnrc",
    ".yarnrc.yml",
    "pkg/.yarnrc.yml",
    # overlong
    "a" * 1025,
    "/".join(["d"] * (MAX_DEPTH + 1)),
    "/".join(["d"] * 100),
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_tenant_paths_are_refused_422(path: str) -> None:
    with pytest.raises(InvalidContent) as info:
        check_path(path)
    assert info.value.status == 422 and info.value.code == "invalid_content"


def test_the_refusal_names_the_path_but_never_more_than_80_characters_of_it() -> None:
    with pytest.raises(InvalidContent) as info:
        check_path("../" + "x" * 2000)
    assert "'../xxx" in info.value.message and len(info.value.message) < 200


ORDINARY_PATHS = [
    "index.html",
    "package.json",
    "src/App.jsx",
    "src/components/Button.tsx",
    "public/logo.svg",
    ".gitignore",
    ".env",
    "src/.gitkeep",
    "npmrc",
    ".npmrc.example",
    "node_modules_old/x.js",
    "my-node_modules/x.js",
    "a b/c d.js",
    "café/naïve.js",
    "src/日本語.ts",
    "...",  # a name on POSIX, not a dot segment
    "a/..b/c..",
    "/".join(["d"] * MAX_DEPTH),
    "/".join(["a" * 200] * 5),  # 1004 characters
    # harmless on POSIX: no normalization turns these into separators or dot segments
    "C:/x",  # a directory named 'C:'
    "\uff0e\uff0e/x",  # fullwidth full stops
    "\u2025/x",  # two dot leader
    "a\u2215b",  # division slash
    "src/\u202egpj.js",  # a bidi override spoofs how a name reads, not where it goes
]


@pytest.mark.parametrize("path", ORDINARY_PATHS)
def test_ordinary_relative_paths_are_accepted_unchanged(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize("path", [".npmrc/x", ".pnpmfile.cjs/index.js", ".yarnrc.yml/x"])
def test_a_reserved_name_is_refused_as_a_directory_too(path: str) -> None:
    with pytest.raises(InvalidContent):
        check_path(path)


@pytest.mark.parametrize("path", ["src/a\x85b.js", "src/a\x9b31mb.js"])
def test_c1_control_characters_are_refused_like_c0_ones(path: str) -> None:
    with pytest.raises(InvalidContent):
        check_path(path)


@pytest.mark.parametrize("path", ["a" * 256 + ".js", "src/" + "\u00e9" * 128])
def test_a_segment_longer_than_the_file_system_allows_is_refused(path: str) -> None:
    with pytest.raises(InvalidContent):
        check_path(path)


# --- validate_files ---------------------------------------------------------------------


def test_a_file_count_over_the_limit_is_413() -> None:
    files = {f"f{i}.js": b"" for i in range(4)}
    with pytest.raises(TooLarge) as info:
        validate_files(files, [], Limits(max_files=3))
    assert info.value.status == 413 and info.value.code == "too_large"


def test_a_file_count_at_the_limit_is_accepted() -> None:
    files = {f"f{i}.js": b"" for i in range(3)}
    # deletions do not count towards the limit; raises TooLarge if they did
    validate_files(files, ["a.js", "b.js", "c.js", "d.js"], Limits(max_files=3))


@pytest.mark.parametrize(("size", "refused"), [(0, False), (8, False), (9, True)])
def test_a_file_over_the_byte_limit_is_413(size: int, refused: bool) -> None:
    files = {"index.html": b"x" * size}
    if refused:
        with pytest.raises(TooLarge, match=re.escape("index.html: 9 bytes; at most 8")):
            validate_files(files, [], Limits(max_file_bytes=8))
    else:
        validate_files(files, [], Limits(max_file_bytes=8))


@pytest.mark.parametrize("bad", ["../x", "node_modules/x", ".npmrc", "/etc/passwd", ""])
def test_a_hostile_path_among_files_or_deletions_is_refused(bad: str) -> None:
    with pytest.raises(InvalidContent):
        validate_files({"ok.js": b"", bad: b""}, [], Limits())
    with pytest.raises(InvalidContent):
        validate_files({"ok.js": b""}, ["ok.js", bad], Limits())


def test_a_path_that_is_both_a_file_and_a_directory_is_refused() -> None:
    with pytest.raises(InvalidContent):
        validate_files({"src/App.jsx": b"", "src": b""}, [], Limits())


# --- is_ignored -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("vite.config.ts", True),
        ("vite.config.js", True),
        ("vite.config.mjs", True),
        ("postcss.config.cjs", True),
        ("tailwind.config.js", True),
        ("tailwind.config.ts", True),
        ("src/vite.config.ts", False),  # only the root's config is ever loaded
        ("vite.config", False),
        ("vite.config.ts.bak", False),
        ("myvite.config.ts", False),
        ("vite.config.local.ts", False),
        ("index.html", False),
        ("package.json", False),
    ],
)
def test_only_root_level_tool_configs_are_listed_as_ignored(path: str, expected: bool) -> None:
    assert is_ignored(path) is expected


# --- decode_content ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "encoding", "expected"),
    [
        ("héllo", "utf-8", "héllo".encode()),
        ("héllo", "utf8", "héllo".encode()),
        ("", "utf-8", b""),
        (base64.b64encode(b"\x89PNG\x00\xff").decode(), "base64", b"\x89PNG\x00\xff"),
        ("", "base64", b""),
    ],
)
def test_contents_decode_from_utf8_or_base64(content: str, encoding: str, expected: bytes) -> None:
    assert decode_content("f", content, encoding) == expected


@pytest.mark.parametrize(
    ("content", "encoding"),
    [
        ("!!!!", "base64"),
        ("aGk", "base64"),  # missing padding
        ("aG k=", "base64"),  # whitespace is not silently dropped
        ("aGk=\n", "base64"),
        ("hi", "latin-1"),
        ("hi", "UTF-8"),  # the contract's spellings only
        ("hi", "hex"),
        ("hi", ""),
    ],
)
def test_bad_base64_or_an_unknown_encoding_is_422(content: str, encoding: str) -> None:
    with pytest.raises(InvalidContent, match=r"^logo\.png: "):
        decode_content("logo.png", content, encoding)


def test_an_update_that_cannot_be_written_whole_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write_tree(root, {"src": b"a file where the update wants a folder", "keep.js": b"1"})
    with pytest.raises(InvalidContent, match="a parent is a file"):
        apply_update(root, {"a.js": b"new", "keep.js": b"2", "src/x.js": b"x"}, [])
    assert sorted(p.name for p in root.iterdir()) == ["keep.js", "src"]
    assert (root / "keep.js").read_bytes() == b"1"


TOTALS = Limits(max_files=4, max_file_bytes=100, max_workspace_bytes=250)


@pytest.mark.parametrize(
    ("sizes", "files", "deletes", "refused"),
    [
        ({"a": 1, "b": 1, "c": 1}, {"d": b"x"}, [], False),  # 4 files: at the limit
        ({"a": 1, "b": 1, "c": 1, "d": 1}, {"e": b"x"}, [], True),  # the fifth, one PUT later
        ({"a": 1, "b": 1, "c": 1, "d": 1}, {"a": b"new"}, [], False),  # a replacement
        ({"a": 1, "b": 1, "c": 1, "d": 1}, {"e": b"x"}, ["a"], False),  # delete one, add one
        ({"src/a": 1, "src/b": 1, "c": 1, "d": 1}, {"e": b"x"}, ["src"], False),  # a folder
        ({"a": 100, "b": 100}, {"c": b"x" * 51}, [], True),  # bytes: 251 > 250
        ({"a": 100, "b": 100}, {"a": b"x" * 50, "c": b"x" * 100}, [], False),  # 250
    ],
)
def test_workspace_totals_hold_across_uploads(
    sizes: dict[str, int], files: dict[str, bytes], deletes: list[str], refused: bool
) -> None:
    if refused:
        with pytest.raises(TooLarge) as info:
            check_totals(sizes, files, deletes, TOTALS)
        assert (info.value.status, info.value.code) == (413, "too_large")
    else:
        check_totals(sizes, files, deletes, TOTALS)


def test_file_sizes_count_regular_files_only_and_skip_links_and_node_modules(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    write_tree(root, {"a.js": b"12345", "src/b.css": b"1"})
    (root / "node_modules").mkdir()
    (root / "node_modules" / "big").write_bytes(b"x" * 1000)
    (root / "link").symlink_to("/etc/passwd")
    assert file_sizes(root) == {"a.js": 5, "src/b.css": 1}


def test_stylesheets_are_written_before_the_files_that_make_tailwind_recompile() -> None:
    from previewnode.workspace import write_order

    order = write_order(["src/App.jsx", "src/index.css", "index.html", "src/a.SCSS", "b.js"])
    assert order == ["src/index.css", "src/a.SCSS", "src/App.jsx", "index.html", "b.js"]
