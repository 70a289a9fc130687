"""Deploying and managing bots: one method per operation."""

from __future__ import annotations

import logging
import time

from controlbot.gateway.base import DEPLOY_QUEUE_WAIT_S, _admin_only, _bot
from controlbot.gateway.checks import Checks
from controlbot.gateway.types import Caller, DeployRequest, Target
from protocol import rules
from protocol.client import BUILD_TIMEOUT_S, DEFAULT_TIMEOUT_S, ProgressCallback
from protocol.errors import (
    BotrunnerError,
    ErrorCode,
    ErrorParams,
    InvalidEnv,
)
from protocol.models import (
    BotStatus,
    Op,
    QuotaInfo,
    Result,
    SystemInfo,
)

log = logging.getLogger(__name__)


class BotOps(Checks):
    """Deploying and managing bots."""

    async def precheck(self, req: DeployRequest) -> None:
        """What a deploy can be refused for before any slow work (a download, a clone)."""
        self.check_env(req.env or {})
        await self.ensure_runner()

    async def deploy(
        self, caller: Caller, req: DeployRequest, on_progress: ProgressCallback | None = None
    ) -> Result:
        """Start a new bot or update one; the Result carries its status and the deploy's notes."""
        env = self.check_env(req.env) if req.env else None
        if req.upload is not None:
            self.check_upload(req.upload)
        tokens = req.tokens or await self.check_tokens(env)
        result = await self.call(
            caller,
            req.op,
            req.target,
            payload=req.upload.data if req.upload else None,
            timeout=BUILD_TIMEOUT_S,
            on_progress=on_progress,
            source=await self.seal_source(req.spec()),
            pull=req.pull,
            env=await self.seal_env(env),  # after the checks, which need the plain values
            usernames=tokens.usernames,
            # A deploy is worth running as long as its requester waits for it: in a burst it may
            # queue behind a hundred others for longer than the default 30 s.
            deadline=time.time() + DEPLOY_QUEUE_WAIT_S,
        )
        result.notes.extend(tokens.notes)
        return result

    async def status(self, caller: Caller, target: Target) -> BotStatus:
        return _bot(await self.call(caller, Op.STATUS, target), caller, target)

    async def bots(self, caller: Caller, *, all_owners: bool = False) -> Result:
        """The caller's bots (an admin's `all_owners`: everyone's) and the caller's quota."""
        if all_owners and not caller.admin:
            raise BotrunnerError("only admins may list every user's bots", code=ErrorCode.FORBIDDEN)
        return await self.call(caller, Op.LIST, all_owners=all_owners)

    async def act(self, caller: Caller, op: Op, target: Target) -> BotStatus:
        """Start, stop or restart a bot; its status afterwards."""
        timeout = BUILD_TIMEOUT_S if op is Op.START else DEFAULT_TIMEOUT_S
        return _bot(await self.call(caller, op, target, timeout=timeout), caller, target)

    async def delete(self, caller: Caller, target: Target) -> QuotaInfo | None:
        return (await self.call(caller, Op.DELETE, target)).quota

    async def logs(
        self,
        caller: Caller,
        target: Target,
        *,
        tail: int,
        since: float | None = None,
        release: int | None = None,
    ) -> str:
        """The bot's last lines; of release N (its kept output when it was replaced) with `release`."""
        return (await self.call(caller, Op.LOGS, target, tail=tail, since=since, release=release)).logs or ""

    # -- releases (issue 12) ---------------------------------------------------------------------

    async def set_env(self, caller: Caller, target: Target, env: dict[str, str], unset: list[str]) -> Result:
        """Merge env changes into a bot's env; the bot restarts to apply them."""
        if not env and not unset:
            raise InvalidEnv(
                "give at least one variable to set, or to unset", params=ErrorParams(reason="empty")
            )
        for key in unset:
            rules.check_env_key(key)
        env = self.check_env(env)
        tokens = await self.check_tokens(env)
        sealed = await self.seal_env(env)  # after the checks, which need the plain values
        result = await self.call(
            caller, Op.SET_ENV, target, env=sealed, unset=unset, usernames=tokens.usernames
        )
        result.notes.extend(tokens.notes)
        return result

    async def delete_webhook(self, caller: Caller, target: Target) -> BotStatus:
        """Remove the webhook on the bot's token (the runner alone reads it), so the bot can poll."""
        return _bot(await self.call(caller, Op.DELETE_WEBHOOK, target), caller, target)

    async def quota(self, caller: Caller, owner: int | None = None) -> QuotaInfo:
        """Bots owned against the limit: the caller's own, or (admins) any user's."""
        if owner is not None and owner != caller.id:
            _admin_only(caller)
        result = await self.call(caller, Op.QUOTA, owner=caller.id if owner is None else owner)
        return result.quota or QuotaInfo(used=0, limit=0)

    async def set_quota(self, caller: Caller, owner: int, limit: int | None) -> QuotaInfo:
        _admin_only(caller)
        result = await self.call(caller, Op.SET_QUOTA, target_owner=owner, quota=limit)
        return result.quota or QuotaInfo(used=0, limit=limit or 0)

    async def system(self, caller: Caller) -> SystemInfo | None:
        _admin_only(caller)
        return (await self.call(caller, Op.SYSTEM)).system

    # -- what happened: resource history and the audit trail (issue 13) ------------------------

    async def top(self, caller: Caller) -> list[BotStatus]:
        """Every bot of every owner, the heaviest on memory first (admins)."""
        _admin_only(caller)
        bots = (await self.bots(caller, all_owners=True)).bots or []
        return sorted(bots, key=lambda b: (-(b.memory_bytes or 0), -(b.cpu_percent or 0)))
