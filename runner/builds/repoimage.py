"""Images built from a repository's own Dockerfile, cached by a hash of the whole tree."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
from docker.utils.build import PatternMatcher

from protocol.errors import InvalidSource
from runner.builds.images import REPO_REPO, BuildContext, build, image_exists
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


@dataclass
class TreeContext(BuildContext):
    """A build context that keeps the executable bits of the repository's files."""

    executables: set[str] = field(default_factory=set)

    def tar(self) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, data in {DOCKERFILE: self.dockerfile.encode(), **self.files}.items():
                info = tarfile.TarInfo(path)
                info.size = len(data)
                info.mode = 0o755 if path in self.executables else 0o644
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        return buf


def repo_context(tree: Tree) -> TreeContext:
    """The tree as a build context: .dockerignore applied here, as the docker CLI would."""
    try:
        dockerfile = tree.files[DOCKERFILE].decode("utf-8")
        ignore = tree.files.get(DOCKERIGNORE, b"").decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidSource("the Dockerfile or .dockerignore is not UTF-8 text", field="source") from e
    patterns = [line.strip() for line in ignore.splitlines() if line.strip() and not line.startswith("#")]
    matcher = PatternMatcher(patterns)
    files = {
        p: d for p, d in tree.files.items() if p not in (DOCKERFILE, DOCKERIGNORE) and not matcher.matches(p)
    }
    files[f"{_DATA_DIR}/.keep"] = b""
    return TreeContext(dockerfile + _DATA_LINES, files, executables=set(tree.executables))


def ensure_repo_image(
    client: docker.DockerClient,
    tree: Tree,
    *,
    network: str | None,
    timeout: float,
    memory_bytes: int,
    on_line: Callable[[str], None] | None = None,
) -> tuple[str, bool]:
    """(tag, cached): the repository's image; a tree seen before is not built again."""
    ctx = repo_context(tree)
    tag = f"{REPO_REPO}:{ctx.digest(*sorted(ctx.executables))}"
    if image_exists(client, tag):
        return tag, True
    build(client, ctx, tag, network=network, timeout=timeout, memory_bytes=memory_bytes, on_line=on_line)
    return tag, False
