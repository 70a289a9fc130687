"""Keep the cache of dependency and repository images under its size cap, least recently used first.

Only images this runner recorded in keys.IMAGE_CACHE are candidates; runtime images never are.
An image a bot record names, or one used in the last `grace` seconds (a deploy in flight), stays.
An image a container uses is kept too: the engine refuses, and the refusal is respected.
"""

from __future__ import annotations

import logging
import time

from runner.backend.base import Backend, ImageRemoval
from runner.builds.images import DEPS_REPO, REPO_REPO

log = logging.getLogger(__name__)

PRUNABLE_REPOS = (DEPS_REPO, REPO_REPO)


async def prune(
    backend: Backend,
    last_used: dict[str, float],
    *,
    keep: set[str],
    cap_bytes: int,
    grace: float = 600.0,
) -> tuple[list[str], list[str]]:
    """Remove LRU images until the cache fits cap_bytes. Returns (removed, forgotten) tags:
    forgotten ones no longer exist and should leave the record."""
    sizes = {t: b for t, b in (await backend.image_usage(PRUNABLE_REPOS)).items() if t in last_used}
    forgotten = [tag for tag in last_used if tag not in sizes]
    total = sum(sizes.values())
    removed: list[str] = []
    now = time.time()
    for tag in sorted(sizes, key=lambda t: last_used[t]):
        if total <= cap_bytes:
            break
        if tag in keep or now - last_used[tag] < grace:
            continue
        outcome = await backend.remove_image(tag)
        if outcome is ImageRemoval.MISSING:
            forgotten.append(tag)
            continue
        if outcome is ImageRemoval.IN_USE:
            continue
        total -= sizes[tag]
        removed.append(tag)
        log.info("cache: pruned %s (%d MB, unused since %.0f s)", tag, sizes[tag] >> 20, now - last_used[tag])
    return removed, forgotten


async def remove_leftovers(backend: Backend) -> None:
    """Untagged layers our failed builds left behind."""
    freed = await backend.remove_build_leftovers()
    if freed:
        log.info("cache: removed leftovers of failed builds (%.1f MB)", freed / 2**20)
