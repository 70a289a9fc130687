"""Images built from a repository's own Dockerfile, cached by a hash of the whole tree."""

from __future__ import annotations

from protocol.errors import InvalidSource
from runner.backend.base import BuildContext
from runner.backend.dockerignore import ignored
from runner.builds.images import REPO_REPO, digest
from runner.builds.tree import Tree

DOCKERFILE = "Dockerfile"
DOCKERIGNORE = ".dockerignore"
# Bots run as uid 65534 with a fresh volume at /data: docker seeds an empty volume from the image's
# /data, so an image whose /data belongs to 65534 gives the bot a writable data directory. COPY
# needs no shell, so this works on distroless bases too. It goes into the final stage.
_DATA_DIR = ".botrunner-data"
_DATA_LINES = (
    f"\n# added by botrunner: /data belongs to the bot's user\nCOPY --chown=65534:65534 {_DATA_DIR}/ /data/\n"
)


def repo_context(tree: Tree) -> BuildContext:
    """The tree as a build context: .dockerignore applied here, as the docker CLI would."""
    try:
        dockerfile = tree.files[DOCKERFILE].decode("utf-8")
        ignore = tree.files.get(DOCKERIGNORE, b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidSource("the Dockerfile or .dockerignore is not UTF-8 text", field="source") from e
    patterns = [line.strip() for line in ignore.splitlines() if line.strip() and not line.startswith("#")]
    skip = ignored(patterns)
    files = {p: d for p, d in tree.files.items() if p not in (DOCKERFILE, DOCKERIGNORE) and not skip(p)}
    files[f"{_DATA_DIR}/.keep"] = b""
    return BuildContext(dockerfile + _DATA_LINES, files, executables=frozenset(tree.executables))


def repo_tag(ctx: BuildContext) -> str:
    """The cache key: the whole context, executable bits included."""
    return f"{REPO_REPO}:{digest(ctx, *sorted(ctx.executables))}"
