"""Which git URLs, branches and commits the runner accepts, decided before anything is cloned."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from protocol.errors import BotrunnerError, ErrorCode

# Never allowed, whatever GIT_ALLOWED_SCHEMES says: they reach the runner's own files or run commands.
_NEVER = frozenset({"file", "ext", "fd"})
# Schemes git itself can clone over; anything else in GIT_ALLOWED_SCHEMES is meaningless.
_TRANSPORTS = frozenset({"https", "http", "git", "ssh"})
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_TRANSPORT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")  # git's <transport>::<address>, e.g. ext::
_SCP_RE = re.compile(r"^[^/:]+:")  # git@host:owner/repo
_BRANCH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]{0,199}$")
_COMMIT_RE = re.compile(r"^[0-9a-fA-F]{4,40}$")
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]*@")


class GitRefused(BotrunnerError):
    """A URL, branch or commit the runner will not hand to git."""

    code = ErrorCode.GIT_REFUSED


class GitFailed(BotrunnerError):
    """git ran and failed: unreachable, no such branch, too large, too slow."""

    code = ErrorCode.GIT_FAILED


def allowed_transports(schemes: Iterable[str]) -> list[str]:
    """The configured schemes git may use, for GIT_ALLOW_PROTOCOL too."""
    return sorted({s.lower() for s in schemes} & _TRANSPORTS)


def check_url(url: str, schemes: Iterable[str]) -> str:
    """Return the URL if it may be cloned; raise GitRefused with the reason otherwise."""
    allowed = allowed_transports(schemes)
    listed = ", ".join(f"{s}://" for s in allowed) or "none"
    if url.startswith("-"):
        raise GitRefused("a git URL may not start with '-'", field="git_url")
    if _TRANSPORT_RE.match(url):
        raise GitRefused("git transport helpers such as ext:: are not allowed", field="git_url")
    if not url or len(url) > 2048 or any(c.isspace() or ord(c) < 32 for c in url):
        raise GitRefused("the git URL is empty, too long or contains spaces", field="git_url")
    m = _SCHEME_RE.match(url)
    if m is None:
        if _SCP_RE.match(url) and not url.startswith(("/", ".", "~")):
            raise GitRefused(f"ssh URLs are not allowed; use one of: {listed}", field="git_url")
        raise GitRefused(f"local paths are not allowed; use a URL starting with {listed}", field="git_url")
    scheme = m.group(1).lower()
    if scheme in _NEVER or scheme not in allowed:
        raise GitRefused(f"{scheme}:// URLs are not allowed; use one of: {listed}", field="git_url")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError as e:
        raise GitRefused("the git URL is malformed", field="git_url") from e
    host = parts.hostname or ""
    if not host or host.startswith("-"):
        raise GitRefused("the git URL has no valid host name", field="git_url")
    if not parts.path.strip("/"):
        raise GitRefused("the git URL names no repository", field="git_url")
    return url


def check_branch(branch: str | None) -> str | None:
    if branch is None:
        return None
    bad = (
        not _BRANCH_RE.fullmatch(branch)
        or ".." in branch
        or "//" in branch
        or branch.endswith(("/", ".", ".lock"))
    )
    if bad:
        raise GitRefused(
            f"invalid branch name {branch!r}: use letters, digits, '.', '_', '-', '/' "
            "and do not start with '-'",
            field="branch",
        )
    return branch


def check_commit(commit: str | None) -> str | None:
    if commit is None:
        return None
    if not _COMMIT_RE.fullmatch(commit):
        raise GitRefused(f"invalid commit {commit!r}: give its sha, 4 to 40 hex digits", field="commit")
    return commit.lower()


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment: what may be shown, stored and logged."""
    m = _SCHEME_RE.match(url)
    if m is None:
        return redact(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return redact(url)
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}{port}{parts.path}"


def redact(text: str, *secrets: str) -> str:
    """Remove user:password@ from any URL in text, and each secret (e.g. the real URL)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, display_url(secret) if "://" in secret else "***")
    return _USERINFO_RE.sub("", text)


def check_host(url: str, allowed_hosts: Iterable[str]) -> None:
    """Refuse clones that would reach the runner's own network (SSRF): with no allow-list, a host
    must resolve only to public addresses; with GIT_ALLOWED_HOSTS set, it must be listed. Blocking
    (DNS): call it off the event loop."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    listed = {h.strip().lower().rstrip(".") for h in allowed_hosts if h.strip()}
    if listed:
        if host not in listed:
            raise GitRefused(f"the host {host!r} is not in GIT_ALLOWED_HOSTS", field="git_url")
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as e:
        raise GitFailed(f"the host {host!r} could not be resolved", field="git_url") from e
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise GitRefused(
                f"the host {host!r} resolves to a private or local address; only public hosts "
                "may be cloned from (see GIT_ALLOWED_HOSTS)",
                field="git_url",
            )
