"""What the benchmark uploads: the fixture React app in tests/fixtures/app, with a
packageJson the shared runtime satisfies (so no install)."""

from __future__ import annotations

from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "app"
PACKAGE_JSON = {
    "name": "bench-app",
    "private": True,
    "type": "module",
    "dependencies": {"react": "^19.0.0", "react-dom": "^19.0.0"},
}


def fixture_files() -> dict[str, str]:
    return {
        p.relative_to(FIXTURE).as_posix(): p.read_text()
        for p in sorted(FIXTURE.rglob("*"))
        if p.is_file()
    }
