"""`build`: the project's Dockerfiles, as Docker users build them, with podman and the bases.

Only the base images differ (`--build-arg PYTHON_IMAGE=... NODE_IMAGE=...`). The host's CA
bundle is bind-mounted read-only into every RUN step (pip and npm verify TLS against it)
and the steps use the host's network. podman keeps its layer cache (and the Dockerfiles'
pip and npm cache mounts) between runs unless `fresh`.
"""

from __future__ import annotations

from preview_images.base import NODE_IMAGE, PYTHON_IMAGE
from preview_images.podman import CA_BUNDLE, ROOT, Failed, Podman
from preview_images.report import Report

IMAGES = {
    "router": ("docker/router.Dockerfile", "localhost/preview-router:local"),
    "node": ("docker/node.Dockerfile", "localhost/preview-node:local"),
}
BASES = {"router": ("PYTHON_IMAGE",), "node": ("PYTHON_IMAGE", "NODE_IMAGE")}
LOCAL = {"PYTHON_IMAGE": PYTHON_IMAGE, "NODE_IMAGE": NODE_IMAGE}


def build_argv(name: str, fresh: bool) -> list[str]:
    """`podman build`'s arguments for one of the project's images."""
    dockerfile, tag = IMAGES[name]
    return [
        "--network=host",
        "--pull=never",
        *(["--no-cache"] if fresh else []),
        f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro",
        *(f"--build-arg={arg}={LOCAL[arg]}" for arg in BASES[name]),
        f"--file={ROOT / dockerfile}",
        f"--tag={tag}",
        str(ROOT),
    ]


def build(podman: Podman, report: Report, fresh: bool) -> None:
    for base in (PYTHON_IMAGE, NODE_IMAGE):
        if podman.image_id(base) is None:
            raise Failed(f"no {base}: run `scripts/images base` first")
    for name, (_, tag) in IMAGES.items():
        with report.step("build", name) as s:
            before = podman.image_id(tag)
            podman.build(*build_argv(name, fresh), log=f"build-{name}")
            podman.note_replaced(tag, before)
            report.weigh(s, tag, podman.image_size)
