"""Checks on what a request carries, before anything reaches the runner.

The patterns here are also declared in the OpenAPI document, so a schema-valid request passes them.
The runner checks again; these only make the API refuse early and name the field.
"""

from __future__ import annotations

import re
from typing import Any, Final

from fastapi import Request, UploadFile

from controlbot.api.errors import code_for_field
from controlbot.gateway import Upload
from protocol import rules
from protocol.errors import BotrunnerError, ErrorCode, ErrorParams, InvalidEnv
from protocol.models import SourceKind, SourceSpec

ENV_ITEM_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_]{0,127}=[^\x00]*$"
# A git ref: no leading '-', so it can never be read as an option.
BRANCH_PATTERN: Final = r"^[A-Za-z0-9_.][A-Za-z0-9_./-]{0,199}$"
COMMIT_PATTERN: Final = r"^[0-9a-fA-F]{4,40}$"
# A relative path inside the repository: every segment starts with a letter, digit or '_', so
# none can be '..' or '.', and the path cannot start with '/' or '-'.
ENTRYPOINT_PATTERN: Final = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(?:/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}){0,15}$"
GIT_URL_MAX = 2048


def parse_env_items(items: list[str]) -> dict[str, str] | None:
    """Repeated `KEY=VALUE` form fields; None when there are none, so the current env stays."""
    if not items:
        return None
    env: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            # Name the key only: the value may be a secret.
            raise InvalidEnv(f"{key[:40]!r} is not KEY=VALUE", params=ErrorParams(key=key[:40]))
        env[rules.check_env_key(key)] = value
    return env


def env_patch(patch: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A JSON env patch split into values to set and keys to unset (those given as null)."""
    set_: dict[str, str] = {}
    unset: list[str] = []
    for key, value in patch.items():
        rules.check_env_key(key)
        if value is None:
            unset.append(key)
        elif isinstance(value, str):
            set_[key] = value
        else:
            raise InvalidEnv(
                f"the value of {key} must be a string, or null to unset it", params=ErrorParams(key=key)
            )
    return set_, unset


async def refuse_empty_fields(request: Request, fields: tuple[str, ...]) -> None:
    """An empty form field is invalid, as the document says; FastAPI alone would read it as absent."""
    form = await request.form()  # already parsed for the route, so this is cached
    for field in fields:
        if any(value == "" for value in form.getlist(field)):
            raise BotrunnerError(
                f"{field} is empty: leave it out or give a value", code=code_for_field(field), field=field
            )


async def read_upload(file: UploadFile, max_bytes: int) -> Upload:
    """An uploaded .py or .zip, read up to just over the limit; the gateway judges the rest."""
    filename = (file.filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return Upload(filename=filename, data=await file.read(max_bytes + 1))


def git_source(
    git_url: str, branch: str | None, entrypoint: str | None, allowed_schemes: list[str]
) -> SourceSpec:
    """A git source whose URL uses an allowed scheme and names a host; nothing is cloned here."""
    check_git_url(git_url, allowed_schemes)
    return SourceSpec(kind=SourceKind.GIT, git_url=git_url, branch=branch, entrypoint=entrypoint)


def _refuse(message: str) -> BotrunnerError:
    return BotrunnerError(message, code=ErrorCode.GIT_REFUSED, field="git_url")


def git_url_pattern(allowed_schemes: list[str]) -> str:
    """What a git URL must look like: an allowed scheme, optional credentials, a host, a path.

    No whitespace or control characters, and no '-' at the start of the URL or the host, so no
    part can ever be read as an option; `ext::` and local paths have no allowed scheme.
    """
    schemes = "|".join(re.escape(s) for s in allowed_schemes) or "(?!)"
    return (
        rf"^(?:{schemes})://(?:[^\x00-\x20/@]+@)?[A-Za-z0-9_.~%][A-Za-z0-9._~%-]*"
        r"(?::[0-9]{1,5})?(?:/[^\x00-\x20\x7f]*)?$"
    )


def check_git_url(url: str, allowed_schemes: list[str]) -> None:
    allowed = " or ".join(allowed_schemes) or "no"
    example = f"{allowed_schemes[0] if allowed_schemes else 'https'}://host/owner/repo.git"
    if len(url) > GIT_URL_MAX:
        raise _refuse(f"the git URL is longer than {GIT_URL_MAX} characters")
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme not in allowed_schemes:
        raise _refuse(f"only {allowed} URLs are allowed here, like {example}")
    if not re.fullmatch(git_url_pattern(allowed_schemes), url):
        # Never echo the URL: it may carry credentials.
        raise _refuse(f"this is not a repository URL; use one like {example}")
