"""Keep the cache of dependency and repository images under its size cap, least recently used first.

Only images this runner recorded in keys.IMAGE_CACHE are candidates; runtime images never are.
An image a bot record names, or one used in the last `grace` seconds (a deploy in flight), stays.
Docker refuses to remove an image a container uses, and that refusal is respected (no force).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import docker
import docker.errors

from runner.backend import names
from runner.builds.images import DEPS_REPO, REPO_REPO

log = logging.getLogger(__name__)

PRUNABLE_REPOS = (DEPS_REPO, REPO_REPO)


@dataclass(frozen=True)
class Cached:
    tag: str
    own_bytes: int  # what removing it frees: its size less the layers it shares
    last_used: float


def cached_images(client: docker.DockerClient, last_used: dict[str, float]) -> list[Cached]:
    """The recorded cache images that exist, with their own sizes."""
    out = []
    for image in client.api.df().get("Images") or []:
        for tag in image.get("RepoTags") or []:
            if tag in last_used and tag.startswith(tuple(f"{r}:" for r in PRUNABLE_REPOS)):
                shared = max(0, int(image.get("SharedSize") or 0))
                own = max(0, int(image.get("Size") or 0) - shared)
                out.append(Cached(tag, own, last_used[tag]))
    return out


def prune(
    client: docker.DockerClient,
    last_used: dict[str, float],
    *,
    keep: set[str],
    cap_bytes: int,
    grace: float = 600.0,
) -> tuple[list[str], list[str]]:
    """Remove LRU images until the cache fits cap_bytes. Returns (removed, forgotten) tags:
    forgotten ones no longer exist and should leave the record."""
    images = cached_images(client, last_used)
    present = {c.tag for c in images}
    forgotten = [tag for tag in last_used if tag not in present]
    total = sum(c.own_bytes for c in images)
    removed: list[str] = []
    now = time.time()
    for c in sorted(images, key=lambda c: c.last_used):
        if total <= cap_bytes:
            break
        if c.tag in keep or now - c.last_used < grace:
            continue
        try:
            client.api.remove_image(c.tag)
        except docker.errors.NotFound:
            forgotten.append(c.tag)
            continue
        except docker.errors.APIError as e:  # a container still uses it
            log.info("cache: keeping %s: %s", c.tag, e.explanation or e)
            continue
        total -= c.own_bytes
        removed.append(c.tag)
        log.info("cache: pruned %s (%d MB, unused since %.0f s)", c.tag, c.own_bytes >> 20, now - c.last_used)
    return removed, forgotten


def remove_leftovers(client: docker.DockerClient, older_than: str = "1m") -> None:
    """Untagged layers our failed builds left behind. An intermediate layer of a build in progress
    is dangling only for the instant between two steps, hence the age limit."""
    flt = {"dangling": True, "label": f"{names.LABEL_MANAGED}=true", "until": older_than}
    freed = client.images.prune(filters=flt).get("SpaceReclaimed") or 0
    if freed:
        log.info("cache: removed leftovers of failed builds (%.1f MB)", freed / 2**20)
