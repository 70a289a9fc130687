"""Backups of a bot's /data: archives made and restored by throwaway sandboxed job containers.

Nothing is ever untarred on the runner. A restore's archive is read here only as a listing, and
refused whole when any entry would escape /data, is a link or a device, or when it unpacks to more
than the limit; a job container (the bot's user, no capabilities, no network) then unpacks it.

Volumes: the job mounts its bot's data volume at /data, and a second one at /app, a path the
runtime image gives to the bots' user, so a fresh volume there starts writable for it. An archive
to hand over is written in the job's own throwaway layer (its root is writable then) and read back
with the engine's copy API before the job is removed.
"""

from __future__ import annotations

import io
import re
import tarfile
import time

from protocol.errors import BotrunnerError, ErrorCode, ErrorParams, InvalidSource
from runner.backend import BotMount, JobSpec
from runner.builds.tree import MAX_FILES, safe_relpath

# Written in the job's own throwaway layer, under /app, which the runtime image gives the bots' user.
ARCHIVE = "/app/backup.tar.gz"
_KEPT_RE = re.compile(r"^(?P<size>\d+) (?P<ts>\d+(?:\.\d+)?) (?P<name>[A-Za-z0-9._-]+\.tar\.gz)$")


def filename(name: str, when: float | None = None) -> str:
    return f"{name}-data-{time.strftime('%Y-%m-%d', time.gmtime(when or time.time()))}.tar.gz"


def _job(
    image: str,
    command: str,
    mounts: list[BotMount],
    timeout: float,
    *,
    files: dict[str, bytes] | None = None,
    collect: str | None = None,
    collect_max_bytes: int = 0,
) -> JobSpec:
    return JobSpec(
        image=image,
        command=["sh", "-c", command],
        mounts=mounts,
        timeout=timeout,
        network=None,  # an archive needs no network
        files=files or {},
        collect=collect,
        collect_max_bytes=collect_max_bytes + (1 << 20),  # the tar the engine wraps it in
        read_only=collect is None,  # a collected file is written in the job's own layer
    )


def archive_job(image: str, owner: int, name: str, timeout: float, max_bytes: int) -> JobSpec:
    """/data (read only) into one .tar.gz in the job's own layer, collected when it is done."""
    data = BotMount(owner, name, "data", "/data", read_only=True)
    cmd = f"tar -C /data -czf {ARCHIVE} ."
    return _job(image, cmd, [data], timeout, collect=ARCHIVE, collect_max_bytes=max_bytes)


def restore_job(image: str, owner: int, name: str, archive: bytes, timeout: float) -> JobSpec:
    """Keep what /data holds in the data-prev volume, then unpack the archive into an empty /data."""
    mounts = [BotMount(owner, name, "data", "/data"), BotMount(owner, name, "data-prev", "/app")]
    script = (
        "set -e; find /app -mindepth 1 -delete; cp -a /data/. /app/; touch /app/.botrunner-prev; "
        "find /data -mindepth 1 -delete; "
        "tar -xzf /work/in.tar.gz -C /data --no-same-owner --no-same-permissions"
    )
    return _job(image, script, mounts, timeout, files={"in.tar.gz": archive})


def undo_job(image: str, owner: int, name: str, timeout: float) -> JobSpec:
    """Put back what the last restore replaced (once: the kept copy is emptied)."""
    mounts = [BotMount(owner, name, "data", "/data"), BotMount(owner, name, "data-prev", "/app")]
    script = (
        "set -e; test -e /app/.botrunner-prev || exit 3; find /data -mindepth 1 -delete; "
        "cp -a /app/. /data/; rm -f /data/.botrunner-prev; find /app -mindepth 1 -delete"
    )
    return _job(image, script, mounts, timeout)


def daily_job(image: str, owner: int, name: str, keep: int, timeout: float) -> JobSpec:
    """Today's archive into the backups volume, keeping the newest `keep`."""
    mounts = [
        BotMount(owner, name, "data", "/data", read_only=True),
        BotMount(owner, name, "backups", "/app"),
    ]
    target = f"/app/{filename(name)}"
    script = (
        f"set -e; tar -C /data -czf {target}.part . && mv {target}.part {target}; "
        f"ls -1t /app/*.tar.gz | tail -n +{keep + 1} | xargs -r rm -f"
    )
    return _job(image, script, mounts, timeout)


def list_job(image: str, owner: int, name: str, timeout: float) -> JobSpec:
    mounts = [BotMount(owner, name, "backups", "/app", read_only=True)]
    script = 'cd /app && for f in *.tar.gz; do [ -e "$f" ] && stat -c \'%s %Y %n\' "$f"; done; true'
    return _job(image, script, mounts, timeout)


def archived_file(tar_bytes: bytes | None) -> bytes:
    """The one file a job's collected path holds (the engine hands a path over as a tar). Only
    read from memory: this is the runner's own job's output, and nothing is written to disk."""
    if not tar_bytes:
        return b""
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = tar.next()
        f = tar.extractfile(member) if member is not None and member.isfile() else None
        return f.read() if f is not None else b""


def parse_list(output: bytes) -> list[tuple[str, int, float]]:
    """(filename, size, mtime) of each kept backup, newest first."""
    found = []
    for line in output.decode(errors="replace").splitlines():
        if m := _KEPT_RE.match(line.strip()):
            found.append((m["name"], int(m["size"]), float(m["ts"])))
    return sorted(found, key=lambda f: -f[2])


def check_archive(data: bytes, max_bytes: int) -> None:
    """Refuse an archive whose entries would leave /data, are not plain files or folders, or that
    unpacks to more than max_bytes (the same rules as an uploaded .zip)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            _check_members(tar, max_bytes)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise InvalidSource("the file is not a .tar.gz archive", params=ErrorParams(reason="not_tar")) from e


def _check_members(tar: tarfile.TarFile, max_bytes: int) -> None:
    total, count = 0, 0
    for member in tar:
        name = member.name.removeprefix("./").rstrip("/")
        if not name or name == ".":
            continue
        if not (member.isfile() or member.isdir()):
            raise InvalidSource(
                f"the archive holds {name!r}, which is a link or a device; archive real files",
                params=ErrorParams(reason="link", path=name[:200]),
            )
        try:
            safe_relpath(name, "archive entry")
        except InvalidSource as e:
            raise InvalidSource(
                f"the archive entry {name!r} would land outside /data; refused",
                params=ErrorParams(reason="escape", path=name[:200]),
            ) from e
        total += member.size
        count += 1
        if total > max_bytes or count > MAX_FILES:
            raise BotrunnerError(
                f"the archive unpacks to more than {max_bytes >> 20} MB or {MAX_FILES} files",
                code=ErrorCode.INVALID_SOURCE,
                field="file",
                params=ErrorParams(reason="too_large", max_bytes=max_bytes, size_bytes=total),
            )
