"""What every clone shares: git's environment, the checkout it reports, and its error wording.

The clone itself runs in a job container (clonejob.py, clone_script.py), never in the runner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runner.builds.giturl import GitFailed, allowed_transports, display_url, redact

_UNREACHABLE = (
    "unable to connect",
    "failed to connect",
    "could not resolve",
    "connection refused",
    "timed out",
)
# What git says when a repository is missing, private, or the credentials are wrong.
_UNREADABLE = (
    "not found",
    "authentication",
    "could not read",
    "does not appear",
    "access denied",
    "not exported",
    "403",
)


@dataclass(frozen=True)
class Checkout:
    commit: str
    subject: str
    branch: str | None


def too_large(max_bytes: int) -> str:
    size = f"{max_bytes >> 20} MB" if max_bytes >= 1 << 20 else f"{max_bytes >> 10} KB"
    return f"the repository is larger than {size}, the limit of this runner"


def git_env(schemes: list[str]) -> dict[str, str]:
    """No prompts, no user or system config, and only the allowed transports, even on redirects."""
    return {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "SSH_ASKPASS": "true",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": ":".join(allowed_transports(schemes)) or "https",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": os.devnull,
        "GIT_CONFIG_KEY_1": "submodule.recurse",
        "GIT_CONFIG_VALUE_1": "false",
        # The host was checked before the clone; a redirect must not lead somewhere unchecked.
        "GIT_CONFIG_KEY_2": "http.followRedirects",
        "GIT_CONFIG_VALUE_2": "false",
    }


def failure(stderr: str, url: str, branch: str | None, commit: str | None, reason: str | None) -> GitFailed:
    """git's stderr as a GIT_FAILED the user can act on; the URL's credentials never shown."""
    if reason is not None:
        return GitFailed(reason)
    stderr = redact(stderr, url).strip()
    low = stderr.lower()
    where = display_url(url)
    if branch and ("remote branch" in low and "not found" in low):
        return GitFailed(f"the branch {branch!r} does not exist in {where}", field="branch")
    if commit and ("did not match any" in low or "not our ref" in low or "couldn't find remote ref" in low):
        return GitFailed(f"the commit {commit} is not in {where}", field="commit")
    if any(s in low for s in _UNREACHABLE):
        return GitFailed(
            f"could not reach {where}; check the host name", field="git_url", detail=stderr[-2000:]
        )
    if any(s in low for s in _UNREADABLE):
        return GitFailed(
            f"could not read the repository {where}: check the URL, and that it is public "
            "or the URL carries an access token",
            field="git_url",
            detail=stderr[-2000:],
        )
    return GitFailed(f"git could not fetch {where}", field="git_url", detail=stderr[-2000:])
