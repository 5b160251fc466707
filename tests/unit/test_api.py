"""previewnode.api: request bodies decoded and uploads validated before the disk (pure)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from previewcore.errors import InvalidContent
from previewcore.jsonbody import decode
from previewnode.api import (
    CreateBody,
    FileEntry,
    PatchBody,
    UpdateBody,
    Upload,
    make_upload,
)
from previewnode.workspace import Limits
from proxycore.errors import BadRequest, TooLarge

PNG = b"\x89PNG\r\n\x1a\n\x00\xff"


def upload(
    files: list[FileEntry] | dict[str, str],
    package_json: dict[str, Any] | None = None,
    deletes: list[str] | None = None,
    limits: Limits | None = None,
) -> Upload:
    return make_upload(files, package_json, deletes or [], limits or Limits())


# --- decode -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b'{"files": [}', b"{} x"])
def test_a_body_that_is_not_json_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest) as info:
        decode(body, CreateBody)
    assert info.value.status == 400 and info.value.code == "bad_request"


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[]", CreateBody),
        (b'"files"', CreateBody),
        (b'{"files": 1}', CreateBody),
        (b'{"files": {"a.js": 1}}', CreateBody),
        (b'{"files": [{"path": "a.js"}]}', CreateBody),  # no content
        (b'{"files": [{"path": "a.js", "content": "", "mode": "755"}]}', CreateBody),
        (b'{"unknown": 1}', CreateBody),
        (b'{"packageJson": []}', CreateBody),
        (b'{"ttlSeconds": "1h"}', CreateBody),
        (b'{"sessionId": 7}', CreateBody),
        (b'{"delete": "a.js"}', UpdateBody),
        (b"{}", PatchBody),
        (b'{"ttlSeconds": null}', PatchBody),
    ],
)
def test_json_of_the_wrong_shape_is_422(body: bytes, kind: type[object]) -> None:
    with pytest.raises(InvalidContent) as info:
        decode(body, kind)
    assert info.value.status == 422 and info.value.code == "invalid_content"


def test_a_create_body_decodes_both_files_shapes_and_its_defaults() -> None:
    listed = decode(b'{"files": [{"path": "a.js", "content": "x"}], "ttlSeconds": 60}', CreateBody)
    assert listed.files == [FileEntry("a.js", "x", "utf-8")] and listed.ttlSeconds == 60
    mapped = decode(b'{"files": {"a.js": "x"}, "affinityKey": "p1"}', CreateBody)
    assert mapped.files == {"a.js": "x"} and mapped.affinityKey == "p1"
    empty = decode(b"{}", CreateBody)
    assert (empty.files, empty.packageJson, empty.sessionId) == ([], None, None)


def test_an_update_body_carries_deletions() -> None:
    body = decode(b'{"delete": ["old.js"], "files": {"new.js": ""}}', UpdateBody)
    assert body.delete == ["old.js"] and body.files == {"new.js": ""}


# --- make_upload: files -----------------------------------------------------------------


def test_files_as_a_list_decode_utf8_and_base64_entries() -> None:
    up = upload(
        [
            FileEntry("index.html", "<h1>é</h1>"),
            FileEntry("public/logo.png", base64.b64encode(PNG).decode(), "base64"),
        ]
    )
    assert up.files == {"index.html": "<h1>é</h1>".encode(), "public/logo.png": PNG}
    assert (up.deps, up.ignored, up.deletes) == (None, [], [])


def test_files_as_an_object_are_utf8_text() -> None:
    up = upload({"src/App.jsx": "export default () => 'é'", "index.html": ""})
    assert up.files == {"src/App.jsx": "export default () => 'é'".encode(), "index.html": b""}


def test_a_path_given_twice_in_the_list_is_422() -> None:
    with pytest.raises(InvalidContent, match="given twice"):
        upload([FileEntry("a.js", "1"), FileEntry("b.js", ""), FileEntry("a.js", "2")])


@pytest.mark.xfail(
    strict=True,
    raises=pytest.fail.Exception,
    reason="the object form cannot see duplicates: msgspec keeps the last of two equal "
    "JSON keys, so the list form's 'given twice' 422 never happens",
)
def test_a_path_given_twice_in_the_object_form_is_422_like_the_list_form() -> None:
    body = decode(b'{"files": {"a.js": "1", "a.js": "2"}}', CreateBody)
    with pytest.raises(InvalidContent):
        upload(body.files)


@pytest.mark.parametrize(
    "files",
    [
        [FileEntry("../escape.js", "")],
        {"node_modules/react/index.js": ""},
        {".npmrc": "registry=http://evil.example/"},
        [FileEntry("a.png", "not base64!", "base64")],
        [FileEntry("a.js", "", "latin-1")],
    ],
)
def test_a_bad_path_or_content_in_an_upload_is_422(files: list[FileEntry] | dict[str, str]) -> None:
    with pytest.raises(InvalidContent):
        upload(files)


def test_deletions_are_checked_and_kept() -> None:
    assert upload({}, deletes=["old.js", "src/x.css"]).deletes == ["old.js", "src/x.css"]
    with pytest.raises(InvalidContent):
        upload({}, deletes=["../../etc/passwd"])


# --- make_upload: package.json ----------------------------------------------------------


def test_package_json_is_merged_in_as_a_file_and_its_dependencies_requested() -> None:
    pkg = {"name": "app", "dependencies": {"react": "^19.0.0", "vite": "^5"}}
    up = upload({"index.html": ""}, pkg)
    assert json.loads(up.files["package.json"]) == pkg
    assert up.deps == {"react": "^19.0.0"}  # vite is the runtime's


def test_package_json_from_the_body_field_replaces_one_among_the_files() -> None:
    up = upload({"package.json": '{"name": "old"}'}, {"name": "new"})
    assert json.loads(up.files["package.json"]) == {"name": "new"}


def test_a_package_json_among_the_files_is_parsed() -> None:
    up = upload({"package.json": '{"dependencies": {"zod": "3.x"}}'})
    assert up.deps == {"zod": "3.x"}


def test_a_nested_package_json_is_only_a_file() -> None:
    up = upload({"packages/a/package.json": "[]"})
    assert up.deps is None and "package.json" not in up.files


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[]", "must be a JSON object"),
        ('"app"', "must be a JSON object"),
        ("1", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("{", "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_a_package_json_that_is_not_an_object_is_422(text: str, match: str) -> None:
    with pytest.raises(InvalidContent, match=match):
        upload({"package.json": text})


@pytest.mark.parametrize(
    "pkg",
    [
        {"dependencies": {"x": "file:../secret"}},
        {"dependencies": {"x": "git+https://github.com/a/b.git"}},
        {"devDependencies": {"x": 1}},
        {"dependencies": ["react"]},
    ],
)
def test_a_package_json_with_a_bad_dependency_is_422(pkg: dict[str, Any]) -> None:
    with pytest.raises(InvalidContent):
        upload({}, pkg)


# --- make_upload: ignored configs -------------------------------------------------------


def test_tool_configs_are_kept_and_listed_as_ignored_in_order() -> None:
    up = upload(
        {
            "vite.config.ts": "export default {}",
            "tailwind.config.js": "",
            "postcss.config.cjs": "",
            "src/vite.config.ts": "",
            "index.html": "",
        }
    )
    assert up.ignored == ["postcss.config.cjs", "tailwind.config.js", "vite.config.ts"]
    assert up.files["vite.config.ts"] == b"export default {}"


# --- make_upload: limits ----------------------------------------------------------------


def test_more_files_than_the_limit_is_413() -> None:
    with pytest.raises(TooLarge) as info:
        upload({"a.js": "", "b.js": "", "c.js": ""}, limits=Limits(max_files=2))
    assert info.value.status == 413 and info.value.code == "too_large"


def test_package_json_from_the_body_counts_towards_the_file_limit() -> None:
    assert len(upload({"a.js": ""}, {"name": "x"}, limits=Limits(max_files=2)).files) == 2
    with pytest.raises(TooLarge):
        upload({"a.js": "", "b.js": ""}, {"name": "x"}, limits=Limits(max_files=2))


@pytest.mark.parametrize(
    ("entry", "refused"),
    [
        (FileEntry("a.txt", "1234"), False),
        (FileEntry("a.txt", "12345"), True),
        (FileEntry("a.txt", "éé"), False),  # 4 bytes
        (FileEntry("a.txt", "ééé"), True),  # 6 bytes: bytes count, not characters
        (FileEntry("a.bin", base64.b64encode(b"1234").decode(), "base64"), False),  # decoded size
        (FileEntry("a.bin", base64.b64encode(b"12345").decode(), "base64"), True),
    ],
)
def test_a_file_over_the_byte_limit_is_413(entry: FileEntry, refused: bool) -> None:
    limits = Limits(max_file_bytes=4)
    if refused:
        with pytest.raises(TooLarge):
            upload([entry], limits=limits)
    else:
        assert len(upload([entry], limits=limits).files[entry.path]) <= 4
