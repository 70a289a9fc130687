"""A bot's declared dependencies, normalised, and the image that has them installed.

The dependency image is the runtime image plus one pip install into its venv, run in a sandboxed
job container and committed (runner/builds/pipjob.py), tagged by a hash of the runtime image and
the normalised dependency set. The bot's code is not in it, so a
second bot with the same set, or a code-only update, starts without running pip.
"""

from __future__ import annotations

import tomllib

from protocol.errors import InvalidSource
from runner.backend.base import Backend, BuildContext
from runner.builds.images import DEPS_REPO, base_image_id, digest
from runner.builds.pipjob import RECIPE, requirements_text
from runner.builds.tree import Tree, safe_relpath

MAX_DEPENDENCIES = 200
MAX_INCLUDES = 10


def check_requirement(req: str, where: str) -> str:
    """One requirement as pip reads it from a file: no options, no line tricks."""
    req = " ".join(req.split())
    if not req or len(req) > 500 or req.startswith("-") or any(ord(c) < 32 for c in req):
        raise InvalidSource(
            f"{where}: {req[:80]!r} is not a package requirement (pip options are not supported)",
            field="source",
        )
    return req


def normalize(deps: list[str]) -> list[str]:
    """The dependency set: whitespace collapsed, duplicates dropped, sorted."""
    out = sorted({" ".join(d.split()) for d in deps if d.strip()}, key=lambda d: (d.lower(), d))
    if len(out) > MAX_DEPENDENCIES:
        raise InvalidSource(f"at most {MAX_DEPENDENCIES} dependencies per bot", field="source")
    return out


def parse_requirements(tree: Tree, path: str, _depth: int = 0) -> list[str]:
    """requirements.txt: one requirement a line; `-r other.txt` inside the bot is followed."""
    if _depth > MAX_INCLUDES:
        raise InvalidSource(f"{path}: too many nested -r includes", field="source")
    try:
        text = tree.files[path].decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidSource(f"{path} is not UTF-8 text", field="source") from e
    deps: list[str] = []
    for lineno, line in enumerate(text.replace("\\\n", "").splitlines(), 1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.partition(" ")
        if head in ("-r", "--requirement") or head.startswith("--requirement="):
            target = rest.strip() or head.partition("=")[2]
            base = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
            include = safe_relpath(base + target, "requirements include")
            if include not in tree.files:
                raise InvalidSource(f"{path}:{lineno}: {target} is not in the bot's files", field="source")
            deps += parse_requirements(tree, include, _depth + 1)
            continue
        deps.append(check_requirement(line, f"{path}:{lineno}"))
    return deps


def parse_pyproject(data: bytes) -> list[str]:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidSource(f"pyproject.toml is not valid TOML: {e}", field="source") from e
    raw = doc.get("project", {}).get("dependencies", [])
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        raise InvalidSource(
            "pyproject.toml: [project].dependencies must be a list of strings", field="source"
        )
    return [check_requirement(d, "pyproject.toml") for d in raw]


def tree_dependencies(tree: Tree) -> tuple[list[str], str | None]:
    """(dependencies, the file they came from): requirements.txt first, then pyproject.toml."""
    if "requirements.txt" in tree.files:
        return normalize(parse_requirements(tree, "requirements.txt")), "requirements.txt"
    if "pyproject.toml" in tree.files:
        return normalize(parse_pyproject(tree.files["pyproject.toml"])), "pyproject.toml"
    return [], None


def deps_key(deps: list[str]) -> BuildContext:
    """What the cache key covers besides the runtime image: how pip runs, and the set."""
    return BuildContext(RECIPE, {"requirements.txt": requirements_text(deps).encode()})


async def deps_tag(backend: Backend, runtime_image: str, deps: list[str]) -> str:
    """The cache key: the runtime image's id and the dependency set."""
    return f"{DEPS_REPO}:{digest(deps_key(deps), await base_image_id(backend, runtime_image))}"
