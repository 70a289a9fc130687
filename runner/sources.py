"""Turn what a user sent (a .py, a .zip, a git URL) into files, an entry point and an image."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from protocol.errors import InvalidSource
from protocol.models import SourceInfo, SourceKind, SourceSpec, Stage

ProgressFn = Callable[[Stage, str], Awaitable[None]]
RuntimeImageFn = Callable[[], Awaitable[str]]

_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class Prepared:
    """A source ready to run: the image, the files for /app, and what python runs."""

    image: str
    files: dict[str, bytes]
    entrypoint: str
    info: SourceInfo
    notice: str | None = None


def safe_py_filename(filename: str | None) -> str:
    base = (filename or "bot.py").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    base = _SAFE_FILENAME.sub("_", base).lstrip(".-") or "bot.py"
    return base if base.endswith(".py") else f"{base}.py"


def check_python_text(data: bytes, max_bytes: int) -> None:
    """A bot must be UTF-8 text; a syntax error is fine (it shows in the logs)."""
    if not data:
        raise InvalidSource("the file is empty", field="file")
    if len(data) > max_bytes:
        raise InvalidSource(f"the file is larger than {max_bytes // (1024 * 1024)} MB", field="file")
    if b"\0" in data:
        raise InvalidSource("this is a binary file, not Python source; send a .py file", field="file")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidSource("the file is not UTF-8 text; send a .py file", field="file") from e


def prepare_file(spec: SourceSpec, data: bytes, runtime_image: str, max_bytes: int) -> Prepared:
    """Simple mode: one .py on the shared runtime image, no build."""
    filename = safe_py_filename(spec.filename)
    check_python_text(data, max_bytes)
    info = SourceInfo(kind=SourceKind.FILE, filename=filename, sha256=hashlib.sha256(data).hexdigest())
    return Prepared(image=runtime_image, files={filename: data}, entrypoint=filename, info=info)


def pack_files(files: dict[str, bytes]) -> bytes:
    """The files of /app as one tar blob: what the runner keeps to recreate a lost container."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def unpack_files(blob: bytes) -> dict[str, bytes]:
    import io
    import tarfile

    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                out[member.name] = f.read()
    return out
