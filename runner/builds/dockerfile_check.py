"""What a repository's own Dockerfile may do before the legacy builder runs it.

The classic builder runs `RUN` as root inside dockerd's reach, and it fetches some things from
dockerd itself, outside any container's network: `ADD <url>` downloads, and the base images of
`FROM` and `COPY --from` are pulled. So before a build, refuse:
- `ADD` with a URL (dockerd would fetch it from the host: loopback, metadata address);
- `FROM` / `COPY --from` naming a registry host that is an IP literal, `localhost`, or a name
  resolving to a non-public address (a pull is a request from the host to that address);
- base images with `ONBUILD` triggers (hidden steps the Dockerfile does not show); checked by the
  caller once the base is local (`onbuild_bases`).
Parsing is deliberately strict: what this module cannot read with certainty is refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field

from protocol.errors import InvalidSource

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_VAR_RE = re.compile(r"\$(\{([A-Za-z_][A-Za-z0-9_]*)(:?[-+][^}]*)?\}|([A-Za-z_][A-Za-z0-9_]*))")
_DIRECTIVE_RE = re.compile(r"^#\s*escape\s*=\s*(\S)", re.IGNORECASE)


@dataclass
class Plan:
    """What a Dockerfile pulls: base images (FROM) and other images (COPY --from)."""

    bases: list[str] = field(default_factory=list)
    copied_from: list[str] = field(default_factory=list)


def refuse(msg: str) -> InvalidSource:
    return InvalidSource(f"Dockerfile: {msg}", field="source")


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines[:5]:  # parser directives come first
        m = _DIRECTIVE_RE.match(line.strip())
        if m:
            escape = m.group(1)
    out: list[tuple[int, str, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped by docker too
        if not buf:
            start = n
        if line.endswith(escape):
            buf += line[:-1] + " "
            continue
        buf += line
        head, _, rest = buf.strip().partition(" ")
        out.append((start, head.upper(), rest.strip()))
        buf = ""
    if buf.strip():
        head, _, rest = buf.strip().partition(" ")
        out.append((start, head.upper(), rest.strip()))
    return out


def _substitute(value: str, args: dict[str, str], where: str) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(2) or m.group(4)
        if name not in args:
            raise refuse(f"{where}: ${name} has no default value; write the image name out")
        return args[name]

    return _VAR_RE.sub(one, value)


def _words(rest: str) -> list[str]:
    if rest.startswith("["):  # JSON form, e.g. ADD ["http://x", "/y"]
        return [w.strip().strip('"') for w in rest.strip("[]").split(",") if w.strip()]
    return rest.split()


def _copy_sources(inst: str, rest: str, stages: set[str], args: dict[str, str], where: str) -> list[str]:
    """Refuse ADD <url>; the images a COPY/ADD --from= names (not a stage of this file)."""
    words = _words(rest)
    if inst == "ADD" and any(_URL_RE.match(w) for w in words if not w.startswith("--")):
        raise refuse(
            f"{where}: ADD with a URL is not allowed (the download would run on the runner's "
            "host); fetch it in a RUN step or put the file in the repository"
        )
    out = []
    for flag in words:
        if flag.startswith("--from="):
            src = _substitute(flag.partition("=")[2], args, where)
            if src.lower() not in stages and not src.isdigit():
                out.append(src)
    return out


def scan(text: str) -> Plan:
    """Refuse ADD <url>; return the images the build would pull, ARG defaults substituted."""
    plan, stages, args = Plan(), set[str](), dict[str, str]()
    for n, inst, rest in instructions(text):
        where = f"line {n}"
        if inst == "ARG":
            for word in rest.split():
                name, eq, default = word.partition("=")
                if eq:
                    args[name] = default.strip("\"'")
        elif inst == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                raise refuse(f"{where}: FROM names no image")
            image = _substitute(words[0], args, where)
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
            if image.lower() not in stages and image != "scratch":
                plan.bases.append(image)
        elif inst in ("ADD", "COPY"):
            plan.copied_from += _copy_sources(inst, rest, stages, args, where)
    return plan


def registry_host(image: str) -> str | None:
    """The registry part of an image reference, as docker reads it; None for Docker Hub."""
    first, sep, _ = image.partition("/")
    if not sep:
        return None
    if "." in first or ":" in first or first == "localhost" or first.startswith("["):
        return first
    return None


def check_registry(image: str) -> None:
    """Refuse an image whose registry is an IP literal or a non-public host. Blocking (DNS)."""
    host_port = registry_host(image)
    if host_port is None:
        return
    host = host_port
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise refuse(f"the image {image!r} names a registry by IP address; use a public registry's name")
    if host.lower().rstrip(".") == "localhost":
        raise refuse(f"the image {image!r} names a local registry")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as e:
        raise refuse(f"the registry of {image!r} could not be resolved") from e
    for info in infos:
        if not ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]).is_global:
            raise refuse(f"the registry of {image!r} resolves to a private or local address")


def check_dockerfile(text: str) -> Plan:
    """Everything but ONBUILD (which needs the engine): blocking, call it off the loop."""
    plan = scan(text)
    for image in (*plan.bases, *plan.copied_from):
        check_registry(image)
    return plan
