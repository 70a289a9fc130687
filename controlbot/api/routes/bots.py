"""The bot collection: list, deploy, status, update, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from controlbot.api.calls import NDJSON, bot_out, call, command, deploy
from controlbot.api.deps import Auth, BotName, Ctx
from controlbot.api.errors import ERROR_RESPONSES
from controlbot.api.forms import (
    BranchField,
    CommitField,
    EntrypointField,
    EnvField,
    FileField,
    GitUrlField,
    NameField,
)
from controlbot.api.inputs import (
    git_source,
    parse_env_items,
    read_upload,
    refuse_empty_fields,
    refuse_own_token,
)
from controlbot.api.schemas import BotList, BotOut
from protocol.client import BUILD_TIMEOUT_S
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
    if all_owners and not caller.admin:
        raise BotrunnerError("only admins may list every user's bots", code=ErrorCode.FORBIDDEN)
    result = await call(ctx, command(caller, Op.LIST, all_owners=all_owners))
    return BotList(bots=result.bots or [], quota=result.quota)


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
) -> BotOut | StreamingResponse:
    """Answers once the bot runs; send `Accept: application/x-ndjson` to get its progress as it goes."""
    await refuse_empty_fields(request, ("git_url", "branch", "entrypoint", "env"))
    env_dict = parse_env_items(env or [])
    refuse_own_token(env_dict, ctx.settings.bot_token)
    payload: bytes | None = None
    if file is not None and git_url is not None:
        raise BotrunnerError(
            "send either a file or a git_url, not both", code=ErrorCode.INVALID_INPUT, field="file"
        )
    if file is not None:
        if branch is not None or entrypoint is not None:
            raise BotrunnerError(
                "branch and entrypoint go with git_url, not with a file",
                code=ErrorCode.INVALID_INPUT,
                field="branch" if branch else "entrypoint",
            )
        source, payload = await read_upload(file, ctx.settings.max_upload_bytes)
    elif git_url is not None:
        source = git_source(git_url, branch, entrypoint, ctx.settings.git_allowed_schemes)
    else:
        raise BotrunnerError(
            "send a file (.py or .zip) or a git_url", code=ErrorCode.INVALID_INPUT, field="file"
        )
    cmd = command(caller, Op.START, name=name, source=source, env=env_dict)
    return await deploy(request, ctx, cmd, payload, timeout=BUILD_TIMEOUT_S, status_code=201)


@router.get("/{name}", response_model=BotOut, summary="A bot's status")
async def get_bot(ctx: Ctx, caller: Auth, name: BotName) -> BotOut:
    return bot_out(await call(ctx, command(caller, Op.STATUS, name=name)))


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
    name: BotName,
    file: FileField = None,
    branch: BranchField = None,
    commit: CommitField = None,
    env: EnvField = None,
) -> BotOut | StreamingResponse:
    """A file replaces the code; without one, a git bot pulls its branch head, or `branch`/`commit`."""
    await refuse_empty_fields(request, ("branch", "commit", "env"))
    env_dict = parse_env_items(env or [])
    refuse_own_token(env_dict, ctx.settings.bot_token)
    payload: bytes | None = None
    if file is not None:
        if branch is not None or commit is not None:
            raise BotrunnerError(
                "send either a file or branch/commit for a git pull, not both",
                code=ErrorCode.INVALID_INPUT,
                field="file",
            )
        source, payload = await read_upload(file, ctx.settings.max_upload_bytes)
        cmd = command(caller, Op.UPDATE, name=name, source=source, env=env_dict)
    else:
        source = SourceSpec(kind=SourceKind.GIT, branch=branch, commit=commit)
        cmd = command(caller, Op.UPDATE, name=name, source=source, env=env_dict, pull=True)
    return await deploy(request, ctx, cmd, payload, timeout=BUILD_TIMEOUT_S, status_code=200)


@router.delete("/{name}", status_code=204, response_class=Response, summary="Delete a bot and its data")
async def delete_bot(ctx: Ctx, caller: Auth, name: BotName) -> Response:
    await call(ctx, command(caller, Op.DELETE, name=name))
    return Response(status_code=204)
