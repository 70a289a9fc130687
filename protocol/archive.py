"""A /data archive over Redis: 1 MiB chunks in a stream with a short TTL, written and read by both
sides (the runner sends backups, the requester sends restores)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from protocol import keys
from protocol.errors import BotrunnerError, ErrorCode, ErrorParams


async def put(redis: Redis, key: str, data: bytes) -> int:
    """Write data as chunks; the number of chunks."""
    chunks = [data[i : i + keys.ARCHIVE_CHUNK] for i in range(0, len(data), keys.ARCHIVE_CHUNK)] or [b""]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(key)
        for chunk in chunks:
            pipe.xadd(key, {"b": chunk})
        pipe.expire(key, keys.ARCHIVE_TTL)
        await pipe.execute()
    return len(chunks)


async def take(redis: Redis, key: str, max_bytes: int) -> bytes:
    """Read a whole archive (at most max_bytes) and delete it."""
    parts: list[bytes] = []
    size, start = 0, "-"
    while True:
        entries: Any = await redis.xrange(key, min=start, max="+", count=16)
        if not entries:
            break
        start = "(" + _id(entries[-1][0])  # exclusive: the next page starts after this entry
        for _entry_id, fields in entries:
            chunk = fields.get(b"b") or fields.get("b") or b""
            size += len(chunk)
            if size > max_bytes:
                await redis.delete(key)
                raise BotrunnerError(
                    f"the archive is larger than {max_bytes >> 20} MB",
                    code=ErrorCode.INVALID_INPUT,
                    field="file",
                    params=ErrorParams(reason="too_large", max_bytes=max_bytes, size_bytes=size),
                )
            parts.append(chunk)
    await redis.delete(key)
    return b"".join(parts)


def _id(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
