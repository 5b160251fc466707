"""Dependency sets: the shared runtime when it satisfies a package.json, else a cached install.

Vite, its React plugin and Tailwind are the platform's tooling: the runtime's
versions are used whatever the upload names (generated apps often pin `vite: ^5`),
so those never trigger an install. Every other dependency must be satisfied by
the runtime's installed version (semver), or the whole set is installed once into
`--cache-dir`, keyed by a hash of the normalized set, with scripts disabled and
one install per key at a time. Specs must be registry versions (CONTRACT §6).

Installs use pnpm (the runtime's pinned copy) against one content-addressed store per
node (`{cache-dir}/pnpm-store`): a set's files are hard links into it, so the second
session with the same or a similar set is linked in seconds instead of downloaded and
unpacked again (`bench/generated.py`, the generated fixture's set: npm 16.2 s cold, 14.0 s
a second copy, 190 MB for three copies; pnpm 7.0 s, 3.3 s, 78 MB with its store).
`shamefully-hoist` gives the flat, npm-like tree that generated apps assume (configs
that `require` a transitive package). When sets go, `pnpm store prune` drops the
store's files no set links any more.

`plan` is pure; `DependencyInstaller.ensure` runs pnpm.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import nodesemver
import trio

from previewcore.errors import InvalidContent
from previewnode import cache_gc
from previewnode.redact import cut_paths

log = logging.getLogger("preview.deps")

# Build tooling the runtime provides or the fixed config replaces: never installed per session.
TOOLING = re.compile(
    r"^(vite|@vitejs/.*|@tailwindcss/vite|tailwindcss|typescript|eslint.*|@eslint/.*|"
    r"typescript-eslint|@typescript-eslint/.*|prettier|postcss|autoprefixer|@types/.*|"
    r"vitest|@vitest/.*|globals|lovable-tagger|@tailwindcss/postcss)$"
)
# The runtime's own copies, linked into an installed set that has none of its own: an app
# config that imports them gets the Vite the launcher would run without one, and the
# fixed config's `@import "tailwindcss"` resolves from the workspace (Tailwind's plugin
# looks in the CSS file's node_modules: without the link, any app with a dependency of
# its own got a 500 "Can't resolve 'tailwindcss'").
RUNTIME_LINKED = ("vite", "@vitejs/plugin-react", "tailwindcss")
_NAME_RE = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
_BAD_SPEC = re.compile(
    r"^(file:|link:|git\+|git:|github:|gitlab:|bitbucket:|gist:|https?:|workspace:|portal:|patch:|npm:)|/|\\"
)
# What a semver range is made of; anything else (`&`, `;`, `$`, quotes, newlines) is not
# a range, even where the loose parser would drop it and read the rest.
_RANGE_CHARS_RE = re.compile(r"^(?:[A-Za-z0-9.+\-^~<>=* ]|\|\|)*$")  # `|` only as `||`
# npm-package-arg reads a spec ending like a tarball as a local file, like `file:`.
_TARBALL_RE = re.compile(r"\.(tgz|tar|tar\.gz)$", re.IGNORECASE)
INSTALL_SECONDS = 600.0
NPM_TAIL = 4000
STORE = "pnpm-store"  # the content-addressed store, beside `deps/` (hard links need one fs)
PNPM_CACHE = "pnpm-cache"  # registry metadata, so a warm install asks nothing it knows


@dataclass(frozen=True)
class Plan:
    """Where a session's `node_modules` comes from."""

    key: str  # "runtime" or the hash of the dependency set
    deps: Mapping[str, str]  # what must be installed (empty for the runtime)

    @property
    def uses_runtime(self) -> bool:
        return self.key == "runtime"


def _validate(name: str, spec: object) -> str:
    if not isinstance(spec, str) or len(spec) > 256:
        raise InvalidContent(f"dependency {name!r}: the version must be a string")
    if not _NAME_RE.match(name) or len(name) > 214:
        raise InvalidContent(f"dependency {name!r}: not a valid npm package name")
    spec = spec.strip()
    if _BAD_SPEC.search(spec) or _TARBALL_RE.search(spec) or not _RANGE_CHARS_RE.match(spec):
        raise InvalidContent(f"dependency {name!r}: {spec!r} is not a registry version")
    if _TAG_RE.match(spec):  # a dist-tag such as "latest" or "next"
        return spec
    try:
        nodesemver.Range(spec, loose=True)
    except ValueError as exc:
        raise InvalidContent(f"dependency {name!r}: bad version range {spec!r}") from exc
    return spec


def requested(package_json: object, *, own_tooling: bool = False) -> dict[str, str]:
    """The dependencies a package.json asks for, validated.

    Without a sandbox the fixed config runs on the runtime's tooling, so tooling is
    never installed. Inside a sandbox the app's own config runs, so all of it is
    installed: Tailwind v3, PostCSS plugins, its Vite plugins, and its own `vite`, on
    which the launcher then runs that config (a Vite 5 app on Vite 5). A set that names
    no `vite` or `@vitejs/plugin-react` gets the runtime's linked in."""
    if package_json is None:
        return {}
    if not isinstance(package_json, dict):
        raise InvalidContent("package.json must be a JSON object")
    out: dict[str, str] = {}
    for field in ("dependencies", "devDependencies"):
        section = package_json.get(field) or {}
        if not isinstance(section, dict):
            raise InvalidContent(f"package.json {field} must be an object")
        for name, spec in section.items():
            checked = _validate(str(name), spec)
            if own_tooling or not TOOLING.match(str(name)):
                out[str(name)] = checked
    return out


def installed_versions(node_modules: Path) -> dict[str, str]:
    """name -> version of every top-level package in a node_modules folder."""
    versions: dict[str, str] = {}
    if not node_modules.is_dir():
        return versions
    for entry in node_modules.iterdir():
        dirs = list(entry.iterdir()) if entry.name.startswith("@") and entry.is_dir() else [entry]
        for d in dirs:
            try:
                meta = json.loads((d / "package.json").read_text())
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict) and isinstance(meta.get("version"), str):
                name = f"{entry.name}/{d.name}" if entry.name.startswith("@") else d.name
                versions[name] = meta["version"]
    return versions


def satisfied(spec: str, version: str) -> bool:
    """Does an installed version satisfy a spec? A dist-tag is satisfied by any version."""
    if _TAG_RE.match(spec):
        return True
    try:
        return bool(nodesemver.satisfies(version, spec, loose=True))
    except ValueError:
        return False


def plan(deps: Mapping[str, str], runtime: Mapping[str, str]) -> Plan:
    """Use the runtime if it satisfies every dependency, else a keyed install."""
    if all(name in runtime and satisfied(spec, runtime[name]) for name, spec in deps.items()):
        return Plan("runtime", {})
    normalized = json.dumps(dict(sorted(deps.items())), separators=(",", ":"))
    return Plan(hashlib.sha256(normalized.encode()).hexdigest()[:20], dict(sorted(deps.items())))


LOCKFILE = "pnpm-lock.yaml"
MANIFEST = "package.json"


def nearest_lockfile(deps_dir: Path, deps: Mapping[str, str]) -> Path | None:
    """The lockfile of the installed set sharing the most `name: spec` pairs with `deps`
    (None when none shares one). Copied into a new set's install, pnpm keeps the versions
    it names and resolves only what differs: one dependency added to a ~60-package app
    took 1.45-4.6 s instead of 1.97-6.2 s here (same store; three runs, a busy machine).
    The sets are the installer's own output, read-only to every dev server."""
    best, shared = None, 0
    try:
        sets = list(deps_dir.iterdir())
    except OSError:
        return None
    for done in sets:
        lockfile = done / LOCKFILE
        if not (done / ".complete").exists() or not lockfile.is_file():
            continue
        try:
            theirs = json.loads((done / MANIFEST).read_text()).get("dependencies", {})
        except (OSError, ValueError, AttributeError):
            continue
        common = sum(1 for name, spec in deps.items() if theirs.get(name) == spec)
        if common > shared:
            best, shared = lockfile, common
    return best


class InstallFailed(Exception):
    """pnpm could not install a dependency set; the message is pnpm's error tail."""


class DependencyInstaller:
    """Installs dependency sets into the cache, once per key, never into the runtime."""

    def __init__(self, runtime_dir: Path, cache_dir: Path, npmrc: Path | None = None) -> None:
        self.runtime_node_modules = runtime_dir / "node_modules"
        self.cache_dir = cache_dir
        self.npmrc = npmrc  # the operator's npm config (registry, auth, retries), or none
        self.runtime_versions = installed_versions(self.runtime_node_modules)
        self.pnpm = self.runtime_node_modules / "pnpm" / "bin" / "pnpm.cjs"
        # A sandbox mounts a private tmpfs here (Vite bundles TS configs into it).
        with contextlib.suppress(OSError):
            (self.runtime_node_modules / ".vite-temp").mkdir(exist_ok=True)
        self._locks: dict[str, trio.Lock] = {}
        self._pruning: trio.Event | None = None  # set while `pnpm store prune` runs
        self.install_seconds = 0.0

    def node_modules_for(self, p: Plan) -> Path:
        if p.uses_runtime:
            return self.runtime_node_modules
        return self.cache_dir / "deps" / p.key / "node_modules"

    def is_ready(self, p: Plan) -> bool:
        return p.uses_runtime or (self.node_modules_for(p).parent / ".complete").exists()

    async def ensure(self, p: Plan) -> Path:
        """The node_modules folder for `p`, installing it first if needed."""
        target = self.node_modules_for(p)
        if self.is_ready(p):
            return target
        lock = self._locks.setdefault(p.key, trio.Lock())
        async with lock:
            if self.is_ready(p):
                return target
            while self._pruning is not None:  # the prune would take files not yet linked
                await self._pruning.wait()
            await self._install(p, target.parent)
        return target

    def _link_runtime(self, node_modules: Path) -> None:
        """The runtime's Vite, React plugin and Tailwind, where the set brought none."""
        for name in RUNTIME_LINKED:
            link = node_modules / name
            source = (self.runtime_node_modules / name).resolve()
            if source.is_dir() and not link.exists() and not link.is_symlink():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source, target_is_directory=True)

    async def _install(self, p: Plan, final: Path) -> None:
        staging = final.parent / f".staging-{p.key}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        manifest = {
            "name": "preview-deps",
            "version": "0.0.0",
            "private": True,
            "dependencies": dict(p.deps),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        like = nearest_lockfile(final.parent, p.deps)
        if like is not None:
            shutil.copyfile(like, staging / LOCKFILE)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(staging),
            "NO_COLOR": "1",
            # The operator's npm config (registry, auth, retries), or none at all: HOME is
            # the staging dir, and uploads can't add an `.npmrc` (it is refused).
            **({"npm_config_userconfig": str(self.npmrc)} if self.npmrc else {}),
            # pnpm reads no npm builtin `cafile`: a host whose TLS goes through a CA of its
            # own names it to Node here (the node image sets it to the system store).
            **{k: v for k, v in os.environ.items() if k == "NODE_EXTRA_CA_CERTS"},
        }
        started = time.monotonic()
        log.info("installing dependency set", extra={"key": p.key, "count": len(p.deps)})
        with trio.move_on_after(INSTALL_SECONDS) as scope:
            result = await trio.run_process(
                ["node", str(self.pnpm), "install", *self.pnpm_flags()],
                cwd=staging,
                env=env,
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        self.install_seconds += time.monotonic() - started
        if scope.cancelled_caught:
            shutil.rmtree(staging, ignore_errors=True)
            raise InstallFailed(f"pnpm install did not finish within {INSTALL_SECONDS:.0f} s")
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            # pnpm reports on stdout; its messages can name the staging and store paths,
            # the node's own, not the client's.
            said = (result.stderr + result.stdout).decode("utf-8", "replace")[-NPM_TAIL:]
            said = cut_paths(said, [(str(staging), ""), (str(self.cache_dir), "<cache-dir>")])
            raise InstallFailed(said.strip() or f"pnpm install exited with {result.returncode}")
        self._link_runtime(staging / "node_modules")
        (staging / "node_modules" / ".vite-temp").mkdir(parents=True, exist_ok=True)
        (staging / ".complete").write_text(str(time.time()))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        cache_gc.record_install(final)

    def pnpm_flags(self) -> list[str]:
        return [
            "--ignore-scripts",
            "--prefer-offline",  # metadata the cache holds is not asked for again
            f"--store-dir={self.cache_dir / STORE}",
            f"--config.cache-dir={self.cache_dir / PNPM_CACHE}",
            "--config.shamefully-hoist=true",
            "--config.confirm-modules-purge=false",
            "--config.update-notifier=false",
            "--reporter=append-only",
            "--loglevel=error",
        ]

    def collect(self, in_use: set[str], cap: int) -> list[str]:
        """Remove the sets no registered session names, as cache_gc decides (blocking)."""
        deps_dir = self.cache_dir / "deps"
        victims = cache_gc.choose(cache_gc.scan(deps_dir), in_use, cap, time.time())
        for key in victims:
            if not self._locks.get(key, trio.Lock()).locked():  # never one being installed
                cache_gc.remove(deps_dir, key)
        return victims

    def installing(self) -> bool:
        return any(lock.locked() for lock in self._locks.values())

    async def prune_store(self) -> None:
        """Drop the store's files no set links any more (pnpm counts hard links).

        Never while an install runs: its new store files have no link yet."""
        if self.installing() or self._pruning or not (self.cache_dir / STORE).is_dir():
            return
        self._pruning = trio.Event()
        try:
            await trio.run_process(
                ["node", str(self.pnpm), "store", "prune", f"--store-dir={self.cache_dir / STORE}"],
                env={"PATH": os.environ.get("PATH", os.defpath), "HOME": str(self.cache_dir)},
                stdin=b"",
                capture_stdout=True,
                capture_stderr=True,
                check=False,
            )
        finally:
            self._pruning.set()
            self._pruning = None
