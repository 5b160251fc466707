"""Which paths of a project folder `preview up` leaves out (pure: no filesystem access).

Always left out: the folders a build or package manager writes (`node_modules`, `dist`,
`build`), every dot-folder (`.git`, `.vite`, `.idea`, ...) and every dotfile. `.env`
files are dotfiles too and stay on this machine unless `--include-env` is given: they
often hold secrets, and everything uploaded can be read back by anyone holding the
session ID. (Vite reads `VITE_*` variables from them, hence the opt-in.)

A `.gitignore` at the top of the folder adds its patterns, with simple `fnmatch`
semantics rather than git's full rules:
- blank lines and `#` comments are skipped; `!` negations are not supported (skipped);
- a trailing `/` makes a pattern match folders only;
- a pattern with a `/` elsewhere (or a leading `/`) is matched against the path from
  the folder's top; one without is matched against each name at any depth;
- a folder that matches leaves out everything under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

SKIPPED_FOLDERS = frozenset({"node_modules", "dist", "build"})


def is_env_file(name: str) -> bool:
    return name == ".env" or name.startswith(".env.")


@dataclass(frozen=True)
class Pattern:
    glob: str
    anchored: bool  # matched against the whole relative path, not each name
    folders_only: bool

    def matches(self, rel: str, is_folder: bool) -> bool:
        if self.folders_only and not is_folder:
            return False
        if self.anchored:
            return fnmatchcase(rel, self.glob)
        return fnmatchcase(rel.rsplit("/", 1)[-1], self.glob)


def parse_gitignore(text: str) -> list[Pattern]:
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        folders_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        if line:
            patterns.append(Pattern(line, anchored, folders_only))
    return patterns


@dataclass(frozen=True)
class IgnoreRules:
    patterns: list[Pattern] = field(default_factory=list)
    include_env: bool = False

    def skips_folder(self, rel: str) -> bool:
        """True when the folder at `rel` (relative, POSIX) is left out with all it holds."""
        name = rel.rsplit("/", 1)[-1]
        if name in SKIPPED_FOLDERS or name.startswith("."):
            return True
        return any(p.matches(rel, True) for p in self.patterns)

    def skips_file(self, rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        if name.startswith(".") and not (self.include_env and is_env_file(name)):
            return True
        return any(p.matches(rel, False) for p in self.patterns)
