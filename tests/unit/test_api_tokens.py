"""API tokens in a real Redis: stored hashed, one per user, revocable (the Lua swap is atomic)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from controlbot import tokens
from protocol import keys

pytestmark = pytest.mark.integration


def owner_id() -> int:
    return 900_000_000 + secrets.randbelow(1_000_000)


async def test_issue_stores_only_the_hash(redis_client: Redis) -> None:
    owner = owner_id()
    token = await tokens.issue(redis_client, owner)
    assert token.startswith(tokens.TOKEN_PREFIX)
    digest = tokens.hash_token(token)
    assert await redis_client.get(keys.api_token(digest)) == str(owner).encode()
    assert await redis_client.get(keys.api_token_owner(owner)) == digest.encode()
    assert await redis_client.get(keys.api_token(token)) is None
    assert await tokens.resolve(redis_client, token) == owner


async def test_a_new_token_revokes_the_old(redis_client: Redis) -> None:
    owner = owner_id()
    old = await tokens.issue(redis_client, owner)
    new = await tokens.issue(redis_client, owner)
    assert await tokens.resolve(redis_client, old) is None
    assert await tokens.resolve(redis_client, new) == owner


async def test_revoke(redis_client: Redis) -> None:
    owner = owner_id()
    token = await tokens.issue(redis_client, owner)
    assert await tokens.revoke(redis_client, owner) is True
    assert await tokens.resolve(redis_client, token) is None
    assert await tokens.revoke(redis_client, owner) is False
    assert await redis_client.get(keys.api_token_owner(owner)) is None


async def test_concurrent_issues_leave_exactly_one_valid_token(redis_client: Redis) -> None:
    owner = owner_id()
    issued = await asyncio.gather(*(tokens.issue(redis_client, owner) for _ in range(20)))
    valid = [t for t in issued if await tokens.resolve(redis_client, t) == owner]
    assert len(valid) == 1


@pytest.mark.parametrize("token", ["", "brt_", "brt_short", "x" * 47, "brt_" + "!" * 43])
async def test_malformed_tokens_resolve_to_nobody(redis_client: Redis, token: str) -> None:
    assert await tokens.resolve(redis_client, token) is None
