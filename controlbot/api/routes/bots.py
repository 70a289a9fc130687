"""The bot collection: list, deploy, status, update, delete."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse

from controlbot.api.calls import NDJSON, bot_out, deploy
from controlbot.api.deps import ApiContext, Auth, Bot, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.api.forms import (
    BranchField,
    CommitField,
    EntrypointField,
    EnvField,
    FileField,
    GitUrlField,
    NameField,
    WaitQuery,
)
from controlbot.api.inputs import git_source, parse_env_items, read_upload, refuse_empty_fields
from controlbot.api.schemas import BotList, BotOut
from controlbot.gateway import Caller, DeployRequest, Target, Upload
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op, SourceKind, SourceSpec

router = APIRouter(prefix="/api/bots", tags=["bots"], responses=ERROR_RESPONSES)


def _streamed(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    """A deploy's answer: the bot, or its progress as NDJSON (app.openapi() adds the StreamEvent schema)."""
    return {
        status: {
            "description": description,
            "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/StreamEvent"}}},
        }
    }


@dataclass(frozen=True)
class Deployer:
    """What both deploys (POST and PUT) take: the form's file, branch and env, and the answer awaited."""

    request: Request
    ctx: ApiContext
    caller: Caller
    wait_health: bool
    file: UploadFile | None
    branch: str | None
    env_items: list[str] | None

    async def env(self, *fields: str) -> dict[str, str] | None:
        """The form's env, once none of `fields` (nor branch or env) is empty."""
        await refuse_empty_fields(self.request, (*fields, "branch", "env"))
        return parse_env_items(self.env_items or [])

    async def upload(self, file: UploadFile) -> Upload:
        return await read_upload(file, self.ctx.settings.max_upload_bytes)

    async def run(self, req: DeployRequest, *, status_code: int) -> BotOut | StreamingResponse:
        return await deploy(
            self.request, self.ctx, self.caller, req, status_code=status_code, wait_health=self.wait_health
        )


async def deployer(
    request: Request,
    ctx: Ctx,
    caller: Auth,
    wait: WaitQuery = None,
    file: FileField = None,
    branch: BranchField = None,
    env: EnvField = None,
) -> Deployer:
    return Deployer(request, ctx, caller, wait == "health", file, branch, env)


Deploy = Annotated[Deployer, Depends(deployer)]


@router.get("", response_model=BotList, summary="List your bots with the quota use")
async def list_bots(
    ctx: Ctx,
    caller: Auth,
    all_owners: Annotated[bool, Query(alias="all", description="Every user's bots (admins only).")] = False,
) -> BotList:
    result = await ctx.gateway.bots(caller, all_owners=all_owners)
    return BotList(bots=result.bots or [], quota=result.quota)


def _refuse(message: str, field: str) -> BotrunnerError:
    return BotrunnerError(message, code=ErrorCode.INVALID_INPUT, field=field)


@router.post(
    "",
    status_code=201,
    response_model=BotOut,
    summary="Deploy a new bot from a file or a git repository",
    responses=_streamed(201, "The bot, once it is running."),
)
async def create_bot(
    deployer: Deploy, name: NameField, git_url: GitUrlField = None, entrypoint: EntrypointField = None
) -> BotOut | StreamingResponse:
    """Answers once the bot runs; send `Accept: application/x-ndjson` to get its progress as it goes."""
    env = await deployer.env("git_url", "entrypoint")
    req = DeployRequest(op=Op.START, target=Target(owner=deployer.caller.id, name=name), env=env)
    file, branch = deployer.file, deployer.branch
    if file is not None:
        if git_url is not None:
            raise _refuse("send either a file or a git_url, not both", "file")
        if branch is not None or entrypoint is not None:
            raise _refuse(
                "branch and entrypoint go with git_url, not with a file", "branch" if branch else "entrypoint"
            )
        req = replace(req, upload=await deployer.upload(file))
    elif git_url is not None:
        schemes = deployer.ctx.settings.git_allowed_schemes
        req = replace(req, source=git_source(git_url, branch, entrypoint, schemes))
    else:
        raise _refuse("send a file (.py or .zip) or a git_url", "file")
    return await deployer.run(req, status_code=201)


@router.get("/{name}", response_model=BotOut, summary="A bot's status")
async def get_bot(ctx: Ctx, caller: Auth, bot: Bot) -> BotOut:
    return bot_out(await ctx.gateway.status(caller, bot))


@router.put(
    "/{name}",
    response_model=BotOut,
    summary="Update a bot: a new file, or a git pull",
    responses=_streamed(200, "The bot, running the new code."),
)
async def update_bot(deployer: Deploy, bot: Bot, commit: CommitField = None) -> BotOut | StreamingResponse:
    """A file replaces the code; without one, a git bot pulls its branch head, or `branch`/`commit`."""
    req = DeployRequest(op=Op.UPDATE, target=bot, env=await deployer.env("commit"))
    file, branch = deployer.file, deployer.branch
    if file is not None:
        if branch is not None or commit is not None:
            raise _refuse("send either a file or branch/commit for a git pull, not both", "file")
        req = replace(req, upload=await deployer.upload(file))
    else:
        req = replace(req, source=SourceSpec(kind=SourceKind.GIT, branch=branch, commit=commit), pull=True)
    return await deployer.run(req, status_code=200)


@router.delete("/{name}", status_code=204, response_class=Response, summary="Delete a bot and its data")
async def delete_bot(ctx: Ctx, caller: Auth, bot: Bot) -> Response:
    await ctx.gateway.delete(caller, bot)
    return Response(status_code=204)
