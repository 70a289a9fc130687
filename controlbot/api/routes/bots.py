"""The bot collection: list, deploy, status, update, delete."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
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
from controlbot.gateway import DeployRequest, Target
from protocol.errors import BotrunnerError, ErrorCode
from protocol.models import Op, SourceKind, SourceSpec

router = APIRouter(prefix="/api/bots", tags=["bots"], responses=ERROR_RESPONSES)

# The streamed form of a deploy; the schema itself is added to the document by app.openapi().
STREAM_CONTENT = {NDJSON: {"schema": {"$ref": "#/components/schemas/StreamEvent"}}}


@router.get("", response_model=BotList, summary="List your bots with the quota use")
async def list_bots(
    ctx: Ctx,
    caller: Auth,
    all_owners: Annotated[bool, Query(alias="all", description="Every user's bots (admins only).")] = False,
) -> BotList:
    result = await ctx.gateway.bots(caller, all_owners=all_owners)
    return BotList(bots=result.bots or [], quota=result.quota)


async def _form(
    request: Request, ctx: ApiContext, fields: tuple[str, ...], env: list[str] | None
) -> dict[str, str] | None:
    """The deploy form's env, once no field in it is empty."""
    await refuse_empty_fields(request, (*fields, "env"))
    return parse_env_items(env or [])


def _refuse(message: str, field: str) -> BotrunnerError:
    return BotrunnerError(message, code=ErrorCode.INVALID_INPUT, field=field)


@router.post(
    "",
    status_code=201,
    response_model=BotOut,
    summary="Deploy a new bot from a file or a git repository",
    responses={201: {"description": "The bot, once it is running.", "content": STREAM_CONTENT}},
)
async def create_bot(
    request: Request,
    ctx: Ctx,
    caller: Auth,
    name: NameField,
    file: FileField = None,
    git_url: GitUrlField = None,
    branch: BranchField = None,
    entrypoint: EntrypointField = None,
    env: EnvField = None,
    wait: WaitQuery = None,
) -> BotOut | StreamingResponse:
    """Answers once the bot runs; send `Accept: application/x-ndjson` to get its progress as it goes."""
    env_dict = await _form(request, ctx, ("git_url", "branch", "entrypoint"), env)
    req = DeployRequest(op=Op.START, target=Target(owner=caller.id, name=name), env=env_dict)
    if file is not None:
        if git_url is not None:
            raise _refuse("send either a file or a git_url, not both", "file")
        if branch is not None or entrypoint is not None:
            raise _refuse(
                "branch and entrypoint go with git_url, not with a file", "branch" if branch else "entrypoint"
            )
        req = replace(req, upload=await read_upload(file, ctx.settings.max_upload_bytes))
    elif git_url is not None:
        req = replace(req, source=git_source(git_url, branch, entrypoint, ctx.settings.git_allowed_schemes))
    else:
        raise _refuse("send a file (.py or .zip) or a git_url", "file")
    return await deploy(request, ctx, caller, req, status_code=201, wait_health=wait == "health")


@router.get("/{name}", response_model=BotOut, summary="A bot's status")
async def get_bot(ctx: Ctx, caller: Auth, bot: Bot) -> BotOut:
    return bot_out(await ctx.gateway.status(caller, bot))


@router.put(
    "/{name}",
    response_model=BotOut,
    summary="Update a bot: a new file, or a git pull",
    responses={200: {"description": "The bot, running the new code.", "content": STREAM_CONTENT}},
)
async def update_bot(
    request: Request,
    ctx: Ctx,
    caller: Auth,
    bot: Bot,
    file: FileField = None,
    branch: BranchField = None,
    commit: CommitField = None,
    env: EnvField = None,
    wait: WaitQuery = None,
) -> BotOut | StreamingResponse:
    """A file replaces the code; without one, a git bot pulls its branch head, or `branch`/`commit`."""
    req = DeployRequest(op=Op.UPDATE, target=bot, env=await _form(request, ctx, ("branch", "commit"), env))
    if file is not None:
        if branch is not None or commit is not None:
            raise _refuse("send either a file or branch/commit for a git pull, not both", "file")
        req = replace(req, upload=await read_upload(file, ctx.settings.max_upload_bytes))
    else:
        req = replace(req, source=SourceSpec(kind=SourceKind.GIT, branch=branch, commit=commit), pull=True)
    return await deploy(request, ctx, caller, req, status_code=200, wait_health=wait == "health")


@router.delete("/{name}", status_code=204, response_class=Response, summary="Delete a bot and its data")
async def delete_bot(ctx: Ctx, caller: Auth, bot: Bot) -> Response:
    await ctx.gateway.delete(caller, bot)
    return Response(status_code=204)
