"""`scripts/images all`: the images built from Debian's archive and npm, then run (opt-in).

Root only and minutes long (a bootstrap, two image builds, two containers), so it runs
only with PREVIEW_TEST_IMAGES=1. The smoke test's own checks are the assertions: its
`smoke: ok` comes only after a preview page, an HMR update for an edit, an npm install
in the node container and exit 0 on SIGTERM (scripts/preview_images/smoke.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("PREVIEW_TEST_IMAGES") != "1",
        reason="opt-in: PREVIEW_TEST_IMAGES=1 (root; builds and runs the images, minutes)",
    ),
]


def test_images_built_without_a_registry_serve_a_preview_and_an_hmr_update() -> None:
    done = subprocess.run(
        [str(ROOT / "scripts" / "images"), "all"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    print(done.stdout[-6000:])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "smoke: ok" in done.stdout.splitlines()
