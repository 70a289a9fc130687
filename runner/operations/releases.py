"""Releases: recording one per successful deploy, listing them, rolling back, and keeping the output
of a replaced release. The lifecycle operations call the helpers here at their edges."""

from __future__ import annotations

import logging

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams
from protocol.models import Command, Desired, Op, Result, Stage
from runner.healthgate import GateKind
from runner.operations.base import OperationsBase
from runner.releases import Release, invalid_state, pick, previous
from runner.sources import ProgressFn, unpack_files
from runner.state import BotRecord

log = logging.getLogger(__name__)


class ReleaseOps(OperationsBase):
    # -- the operations -------------------------------------------------------------------------
    async def list_releases(self, cmd: Command, progress: ProgressFn) -> Result:
        rec = await self._record(cmd)
        releases, current = await self.releases.load(rec.owner, rec.name)
        infos = [r.info(current) for r in reversed(releases)]  # newest first
        return Result(request_id=cmd.request_id, bot=await self.bot_status(rec), releases=infos)

    async def rollback(self, cmd: Command, progress: ProgressFn) -> Result:
        """Run an earlier release again (default: the previous one); it becomes a new release.
        Its stored tree and image are reused: no clone, no pull, no pip."""
        rec = await self._record(cmd)
        if rec.request_id == cmd.request_id:  # redelivered after the switch: finish what is left
            await self.deploy(rec)
            rel = await self.released(rec, Op.ROLLBACK, cmd.actor)
            return Result(
                request_id=cmd.request_id, bot=await self.bot_status(rec), releases=[rel.info(rel.number)]
            )
        releases, current = await self.releases.load(rec.owner, rec.name)
        target = pick(releases, current, cmd.release)
        await progress(Stage.STOPPING, "")
        await self.keep_logs(rec)
        await progress(Stage.STARTING, "")
        await self.restore_release(rec, target, cmd.request_id)
        rel = await self.released(rec, Op.ROLLBACK, cmd.actor, restored=target.number)
        return Result(
            request_id=cmd.request_id, bot=await self.bot_status(rec), releases=[rel.info(rel.number)]
        )

    # -- helpers the lifecycle uses -------------------------------------------------------------
    async def restore_release(self, rec: BotRecord, rel: Release, request_id: str) -> None:
        """Make rec run release `rel` (code, image, entry point and env) under request_id."""
        blob = await self.releases.tree(rec.owner, rec.name, rel.tree)
        if blob is None:
            raise invalid_state(
                f"the code of release {rel.number} is no longer stored", "tree_gone", rel.number
            )
        await self._stop_current(rec)
        rec.source, rec.image, rec.entrypoint = rel.source, rel.image, rel.entrypoint
        rec.own_image, rec.git_url, rec.env = rel.own_image, rel.git_url, dict(rel.env)
        rec.request_id, rec.desired = request_id, Desired.RUNNING
        await self.store.save(rec, source=blob)
        await self.watcher.reset_streak(rec.owner, rec.name)
        await self.deploy(rec, unpack_files(blob))

    async def released(
        self,
        rec: BotRecord,
        op: Op,
        actor: int | None,
        *,
        restored: int | None = None,
        blob: bytes | None = None,
    ) -> Release:
        """Record what rec runs now as a new release and, for a deploy, open its health gate."""
        if blob is None:
            blob = await self.store.source(rec.owner, rec.name) or b""
        before = await self.releases.load(rec.owner, rec.name)
        done = next((r for r in before[0] if r.request_id == rec.request_id), None)
        if done is not None:  # a redelivered command: recorded, and its gate opened, already
            return done
        rel = await self.releases.record(rec, blob, op, actor, restored)
        kind = {Op.START: GateKind.FIRST, Op.UPDATE: GateKind.UPDATE, Op.ROLLBACK: GateKind.ROLLBACK}.get(op)
        if self.gate is not None and kind is not None and rec.desired is Desired.RUNNING:
            # The release that ran before this one, if it did not fail, is where a crash goes back to.
            fallback = previous([*before[0], rel], rel.number) if op is Op.UPDATE else None
            await self.gate.begin(rec, kind, rel.number, fallback.number if fallback else None)
        return rel

    async def keep_logs(self, rec: BotRecord) -> None:
        """Keep the last lines of the current release's output before its container is replaced."""
        if self.settings.runner_keep_log_lines <= 0:
            return
        releases, current = await self.releases.load(rec.owner, rec.name)
        rel = next((r for r in releases if r.number == current), None)
        if rel is None:
            return
        try:
            text = await self.backend.logs(rec.owner, rec.name, self.settings.runner_keep_log_lines, None)
        except BotrunnerError as e:
            log.warning("could not keep the logs of %s/%s release %s: %s", rec.owner, rec.name, rel.number, e)
            return
        if text:  # it rests in Redis: the bot's own values are masked first
            await self.releases.keep_logs(rec.owner, rec.name, rel, self.secrets.masker(rec.env)(text))

    async def check_source_bytes(self, owner: int, adding: int) -> None:
        """USER_SOURCE_BYTES: every stored tree of the owner, with the one about to be stored."""
        limit = self.settings.user_source_limit
        used = await self.releases.stored_bytes(owner, await self.store.names(owner))
        if used + adding > limit:
            raise BotrunnerError(
                f"your stored code would take {(used + adding) / 2**20:.1f} MB, over the limit of "
                f"{limit / 2**20:.0f} MB (kept releases count too); delete a bot or send smaller code",
                code=ErrorCode.QUOTA_EXCEEDED,
                params=ErrorParams(reason="source_bytes", max_bytes=limit, size_bytes=used + adding),
            )

    async def release_logs(self, rec: BotRecord, number: int) -> str:
        """The kept output of release `number`; the live output when it is the current one."""
        releases, current = await self.releases.load(rec.owner, rec.name)
        if number == current:
            return await self.backend.logs(
                rec.owner, rec.name, self.settings.runner_keep_log_lines or None, None
            )
        if not any(r.number == number for r in releases):
            raise invalid_state(
                f"there is no release {number}; see the list of releases", "no_release", number
            )
        return await self.releases.logs(rec.owner, rec.name, number) or ""
