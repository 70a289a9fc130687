"""A bot's files as a tree: read safely from disk, and its entry point chosen."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from protocol.errors import InvalidSource

DEFAULT_ENTRYPOINTS = ("__main__.py", "main.py", "bot.py")
MAX_FILES = 5000
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


@dataclass
class Tree:
    """Relative POSIX path -> content, plus the symlinks that were dropped because they leave it."""

    files: dict[str, bytes] = field(default_factory=dict)
    executables: set[str] = field(default_factory=set)
    dropped_links: list[str] = field(default_factory=list)


def safe_relpath(path: str, what: str = "path") -> str:
    """A normalised relative path that stays inside its tree; InvalidSource otherwise."""
    if not path or "\0" in path or "\\" in path or len(path) > 1024:
        raise InvalidSource(f"invalid {what} {path!r}", field="entrypoint")
    if path.startswith("/") or _DRIVE_RE.match(path):
        raise InvalidSource(f"the {what} {path!r} must be a relative path inside the bot", field="entrypoint")
    parts = [p for p in PurePosixPath(path).parts if p != "."]
    if not parts or ".." in parts:
        raise InvalidSource(f"the {what} {path!r} must stay inside the bot: no '..'", field="entrypoint")
    return "/".join(parts)


def read_tree(root: Path, max_bytes: int) -> Tree:
    """Every regular file under root except .git; symlinks that leave the tree are dropped."""
    tree, total = Tree(), 0
    real_root = root.resolve()
    for dirpath, dirs, names in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for d in list(dirs):
            if (Path(dirpath) / d).is_symlink():  # os.walk would not descend; say so
                dirs.remove(d)
                tree.dropped_links.append((rel_dir / d).as_posix())
        for name in sorted(names):
            path = Path(dirpath) / name
            rel = (rel_dir / name).as_posix()
            if path.is_symlink():
                target = path.resolve()
                inside = target.is_relative_to(real_root)
                inside = inside and ".git" not in target.relative_to(real_root).parts
                if not inside or not target.is_file():
                    tree.dropped_links.append(rel)
                    continue
            elif not path.is_file():
                continue
            data = path.read_bytes()
            total += len(data)
            if total > max_bytes or len(tree.files) >= MAX_FILES:
                raise InvalidSource(
                    f"the bot is larger than {max_bytes // (1024 * 1024)} MB or {MAX_FILES} files",
                    field="source",
                )
            tree.files[rel] = data
            if os.access(path, os.X_OK):
                tree.executables.add(rel)
    return tree


def choose_entrypoint(tree: Tree, given: str | None, prefer: Iterable[str] = ()) -> tuple[str, bool]:
    """(entry point, given?): the given one, else a preferred one present, else a default."""
    if given:
        path = safe_relpath(given, "entry point")
        if path in tree.dropped_links:
            raise InvalidSource(
                f"the entry point {path!r} is a symlink that leaves the bot's files", field="entrypoint"
            )
        if path not in tree.files:
            raise InvalidSource(f"the entry point {path!r} is not in the bot's files", field="entrypoint")
        return path, True
    for path in (*prefer, *DEFAULT_ENTRYPOINTS):
        if path in tree.files:
            return path, False
    raise InvalidSource(
        "no entry point: none of " + ", ".join(DEFAULT_ENTRYPOINTS) + " is at the top of the bot's "
        "files; name the file to run with --entrypoint",
        field="entrypoint",
    )
