"""Annotated request parameters shared by the routes, with the constraints the OpenAPI document shows."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import File, Form, Query, UploadFile
from pydantic import StringConstraints

from controlbot.api.inputs import (
    BRANCH_PATTERN,
    COMMIT_PATTERN,
    ENTRYPOINT_PATTERN,
    ENV_ITEM_PATTERN,
    GIT_URL_MAX,
)
from protocol.rules import MAX_ENV_VALUE_BYTES, NAME_PATTERN
from protocol.timeparse import DURATION_PATTERN, SINCE_HELP

EnvItem = Annotated[str, StringConstraints(pattern=ENV_ITEM_PATTERN, max_length=MAX_ENV_VALUE_BYTES + 130)]

NameField = Annotated[
    str,
    Form(
        pattern=NAME_PATTERN,
        description="2-31 characters: lowercase letters, digits and '-', starting with a letter or digit.",
    ),
]
FileField = Annotated[UploadFile | None, File(description="A .py bot, or a .zip bot package.")]
GitUrlField = Annotated[
    str | None,
    Form(min_length=1, max_length=GIT_URL_MAX, description="A repository URL using an allowed scheme."),
]
BranchField = Annotated[str | None, Form(pattern=BRANCH_PATTERN, description="The branch to deploy.")]
CommitField = Annotated[str | None, Form(pattern=COMMIT_PATTERN, description="A commit sha to deploy.")]
EntrypointField = Annotated[
    str | None,
    Form(pattern=ENTRYPOINT_PATTERN, description="The .py to run, relative to the repository root."),
]
EnvField = Annotated[
    list[EnvItem] | None,
    Form(description="Environment variables, one `KEY=VALUE` per field; omitted keeps the current env."),
]

SINCE_MAX = 64

TailQuery = Annotated[int, Query(ge=1, le=10_000, description="How many of the last lines to return.")]
SinceQuery = Annotated[
    str | None,
    Query(
        max_length=SINCE_MAX,
        description=f"Only lines since {SINCE_HELP}; a time needs its offset (Z or +02:00).",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "format": "date-time", "maxLength": SINCE_MAX},
                {"type": "string", "pattern": DURATION_PATTERN, "maxLength": SINCE_MAX},
            ]
        },
    ),
]

# Releases and the health gate (issue 12).
WaitQuery = Annotated[
    Literal["health"] | None,
    Query(description="`health`: answer once the health gate has judged the new release, with its verdict."),
]
ReleaseQuery = Annotated[
    int | None, Query(ge=1, description="The release whose kept output to return (see /releases).")
]
