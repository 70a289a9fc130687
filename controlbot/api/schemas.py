"""Response bodies of the HTTP API that are not protocol models already."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, RootModel

from controlbot.api.errors import ErrorDetail
from protocol.models import BotStatus, GateVerdict, Note, QuotaInfo, ReleaseInfo, Stage


class HealthOut(BaseModel):
    """The health gate's verdict on a deploy (issue 12), with `?wait=health`."""

    verdict: GateVerdict | None = Field(None, description="None: the gate had not ended in time.")
    release: int | None = Field(None, description="The release the gate watched.")
    restored: int | None = Field(None, description="rolled_back: the release running again.")
    exit_code: int | None = None
    log_tail: str | None = Field(None, description="The crashed release's last lines.")


class ReleaseList(BaseModel):
    releases: list[ReleaseInfo] = Field(description="Newest first; `current` marks the one running.")


class BotOut(BotStatus):
    """A bot's status, as `GET /api/bots/{name}` and every action answer it."""

    notes: list[Note] = Field(
        default_factory=list, description="Remarks on a deploy, typed: the entry point used, dependencies."
    )
    notice: str | None = Field(None, description="The notes as one plain English sentence.")
    health: HealthOut | None = Field(None, description="With `?wait=health`: how the health gate ended.")


class BotList(BaseModel):
    bots: list[BotStatus]
    quota: QuotaInfo | None = Field(None, description="Bots owned against the limit, e.g. used=2, limit=3.")


class LogLine(BaseModel):
    """One line of `GET /api/bots/{name}/logs` in its default JSON-lines form."""

    line: str


class RunnerState(BaseModel):
    heartbeat_age_seconds: float
    docker_ok: bool


class Health(BaseModel):
    """What `/healthz` tells anyone, without a token: nothing more than up or down."""

    status: Literal["ok", "unavailable"]
    redis: bool
    runner: RunnerState | None = Field(None, description="The runner's heartbeat, when it is fresh.")


class ProgressEvent(BaseModel):
    type: Literal["progress"] = "progress"
    stage: Stage
    message: str = ""


class ResultEvent(BaseModel):
    type: Literal["result"] = "result"
    bot: BotOut


class ErrorEvent(BaseModel):
    type: Literal["error"] = "error"
    status: int = Field(description="The HTTP status the error would have had without streaming.")
    error: ErrorDetail


AnyEvent = Annotated[ProgressEvent | ResultEvent | ErrorEvent, Field(discriminator="type")]


class StreamEvent(RootModel[AnyEvent]):
    """One line of a streamed deploy (`Accept: application/x-ndjson`): progress, then a result or error."""
