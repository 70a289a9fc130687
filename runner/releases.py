"""The store of a bot's releases: what each successful deploy ran, so a rollback can run it again.

A release holds the code (its SourceInfo and the stored tree), the dependency image, the entry
point, the env as stored (opaque strings, copied, never parsed: they may be sealed), who made it
and when. Trees are stored once per content hash, so an /env change shares its release's tree.
Every write happens under the bot's lock (a command, or a health gate's verdict), so plain
pipelines suffice.
"""

from __future__ import annotations

import hashlib
import time

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from protocol import keys
from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.models import Op, ReleaseInfo, SourceInfo
from runner.state import BotRecord

CURRENT = "current"
# Kept logs of a replaced release: at most RUNNER_KEEP_LOG_LINES lines and this many bytes.
MAX_KEPT_LOG_BYTES = 256 * 1024
# What a release keeps of the bot's record: enough to run the same code with the same env again.
RECORDED = {"request_id", "source", "image", "entrypoint", "own_image", "git_url", "env"}


class Release(BaseModel):
    """One release as the runner keeps it; `info()` is what front ends see (no env)."""

    number: int
    op: Op
    created_at: float = Field(default_factory=time.time)
    actor: int | None = None
    request_id: str
    source: SourceInfo
    image: str
    entrypoint: str
    own_image: bool = False
    git_url: str | None = None  # as the record holds it (credentials, maybe sealed): copied only
    env: dict[str, str] = Field(default_factory=dict)
    tree: str  # sha256 of the stored tree blob
    tree_bytes: int = 0
    failed: bool = False
    restored: int | None = None
    has_logs: bool = False

    def info(self, current: int | None) -> ReleaseInfo:
        shown = self.model_dump(include=set(ReleaseInfo.model_fields))
        return ReleaseInfo.model_validate({**shown, "current": self.number == current})


def invalid_state(message: str, reason: str, release: int | None = None) -> BotrunnerError:
    return BotrunnerError(
        message,
        code=ErrorCode.INVALID_STATE,
        field="release",
        params=ErrorParams(reason=reason, release=release),
    )


def previous(releases: list[Release], current: int | None) -> Release | None:
    """The newest release before the current one that did not fail."""
    if current is None:
        return None
    older = [r for r in releases if r.number < current and not r.failed]
    return max(older, key=lambda r: r.number) if older else None


def pick(releases: list[Release], current: int | None, number: int | None) -> Release:
    """The release a rollback restores: `number`, or the previous one; INVALID_STATE otherwise."""
    if number is None:
        found = previous(releases, current)
        if found is None:
            raise invalid_state("there is no previous release to roll back to", "no_previous")
        return found
    for rel in releases:
        if rel.number == number:
            if rel.number == current:
                raise invalid_state(f"release {number} is the current one", "current", number)
            return rel
    raise invalid_state(f"there is no release {number}; see the list of releases", "no_release", number)


class ReleaseStore:
    def __init__(self, redis: Redis, *, keep: int, keep_log_lines: int) -> None:
        self.redis = redis
        self.keep = keep
        self.keep_log_lines = keep_log_lines

    async def load(self, owner: int, name: str) -> tuple[list[Release], int | None]:
        """The bot's kept releases, oldest first, and the current one's number."""
        raw = await self.redis.hgetall(keys.releases(owner, name))
        current: int | None = None
        out: list[Release] = []
        for field, value in raw.items():
            f = field.decode() if isinstance(field, bytes) else field
            if f == CURRENT:
                current = int(value)
            else:
                out.append(Release.model_validate_json(value))
        return sorted(out, key=lambda r: r.number), current

    async def tree(self, owner: int, name: str, sha: str) -> bytes | None:
        data = await self.redis.get(keys.release_tree(owner, name, sha))
        return data if isinstance(data, bytes) else None

    async def record(
        self, rec: BotRecord, blob: bytes, op: Op, actor: int | None, restored: int | None = None
    ) -> Release:
        """Record what rec now runs as the bot's newest release (once per request) and make it current."""
        releases, _current = await self.load(rec.owner, rec.name)
        for rel in releases:
            if rel.request_id == rec.request_id:  # a redelivered command: already recorded
                return rel
        sha = hashlib.sha256(blob).hexdigest()
        rel = Release(
            **rec.model_dump(include=RECORDED),
            number=max((r.number for r in releases), default=0) + 1,
            op=op,
            actor=actor,
            tree=sha,
            tree_bytes=len(blob),
            restored=restored,
        )
        key = keys.releases(rec.owner, rec.name)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.release_tree(rec.owner, rec.name, sha), blob, nx=True)
            pipe.hset(key, str(rel.number), rel.model_dump_json())
            pipe.hset(key, CURRENT, rel.number)
            await pipe.execute()
        await self._prune(rec.owner, rec.name, [*releases, rel], rel.number)
        return rel

    async def _prune(self, owner: int, name: str, releases: list[Release], current: int) -> None:
        """Keep the newest `keep` releases (the current one always); the rest go with their trees
        (unless a kept release shares one) and their logs."""
        ordered = sorted(releases, key=lambda r: r.number, reverse=True)
        kept = [r for r in ordered if r.number == current]
        kept += [r for r in ordered if r.number != current][: max(0, self.keep - 1)]
        dropped = [r for r in ordered if r not in kept]
        if not dropped:
            return
        trees = {r.tree for r in kept}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.releases(owner, name), *[str(r.number) for r in dropped])
            for r in dropped:
                pipe.delete(keys.release_logs(owner, name, r.number))
                if r.tree not in trees:
                    pipe.delete(keys.release_tree(owner, name, r.tree))
            await pipe.execute()

    async def update(self, owner: int, name: str, rel: Release) -> None:
        await self.redis.hset(keys.releases(owner, name), str(rel.number), rel.model_dump_json())

    async def set_current(self, owner: int, name: str, number: int) -> None:
        await self.redis.hset(keys.releases(owner, name), CURRENT, number)

    async def keep_logs(self, owner: int, name: str, rel: Release, text: str) -> None:
        """The last lines of a replaced release's output, capped in lines and bytes."""
        if self.keep_log_lines <= 0:
            return
        lines = text.splitlines()[-self.keep_log_lines :]
        data = "\n".join(lines).encode()[-MAX_KEPT_LOG_BYTES:]
        await self.redis.set(keys.release_logs(owner, name, rel.number), data)
        if not rel.has_logs:
            rel.has_logs = True
            await self.update(owner, name, rel)

    async def logs(self, owner: int, name: str, number: int) -> str | None:
        data = await self.redis.get(keys.release_logs(owner, name, number))
        if data is None:
            return None
        return data.decode(errors="replace") if isinstance(data, bytes) else str(data)

    async def forget(self, owner: int, name: str) -> None:
        """Everything of a deleted bot: its releases, their trees and logs."""
        releases, _current = await self.load(owner, name)
        doomed = [keys.releases(owner, name)]
        doomed += [keys.release_tree(owner, name, r.tree) for r in releases]
        doomed += [keys.release_logs(owner, name, r.number) for r in releases]
        await self.redis.delete(*doomed)

    async def images(self, bots: list[tuple[int, str]]) -> set[str]:
        """Every image a kept release names: in use, so pruning the cache never removes it."""
        out: set[str] = set()
        for owner, name in bots:
            releases, _current = await self.load(owner, name)
            out.update(r.image for r in releases)
        return out

    async def stored_bytes(self, owner: int, names: list[str]) -> int:
        """Every stored tree of an owner: each bot's current source, and its kept releases' trees
        (each tree once; the current release's tree is the current source)."""
        if not names:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.strlen(keys.bot_source(owner, name))
            sizes = await pipe.execute()
        total = sum(int(s) for s in sizes)
        for name in names:
            releases, current = await self.load(owner, name)
            cur = next((r.tree for r in releases if r.number == current), None)
            total += sum({r.tree: r.tree_bytes for r in releases if r.tree != cur}.values())
        return total
