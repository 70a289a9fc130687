"""The checks every front end needs, written once: the control bot's own token, env, uploads."""

from __future__ import annotations

import logging
import re

from controlbot.gateway.base import GatewayBase
from controlbot.gateway.types import Upload
from protocol import rules
from protocol.errors import (
    ErrorParams,
    InvalidEnv,
    InvalidSource,
)
from protocol.models import (
    SourceKind,
)

log = logging.getLogger(__name__)


_CODING_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive


def _python_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        head = b"\n".join(data.split(b"\n", 2)[:2])
        return _CODING_RE.search(head) is not None  # PEP 263 declares another encoding


class Checks(GatewayBase):
    """What every front end refuses the same way: env values, uploads."""

    def check_env(self, env: dict[str, str]) -> dict[str, str]:
        """Values to set: valid names and sizes, and never the control bot's own token."""
        for key, value in env.items():
            if rules.holds_token(value, self.bot_token):
                raise InvalidEnv(
                    f"{key} holds the control bot's own token; create a separate bot with @BotFather "
                    "and use its token",
                    params=ErrorParams(reason="own_token", key=key),
                )
        return rules.check_env(env)

    def check_upload_meta(self, filename: str, size: int | None) -> None:
        """What can be refused before a file is downloaded: its kind and its declared size."""
        if not filename.lower().endswith(rules.SOURCE_SUFFIXES):
            raise InvalidSource(
                "send a single .py file, or a bot package as a .zip",
                params=ErrorParams(reason="kind", path=filename[:200]),
            )
        if size is not None:
            self._check_size(size)

    def _check_size(self, size: int) -> None:
        if size > self.max_upload_bytes:
            raise InvalidSource(
                f"the file is larger than {self.max_upload_bytes / 2**20:g} MB",
                params=ErrorParams(reason="too_large", max_bytes=self.max_upload_bytes, size_bytes=size),
            )

    def check_upload(self, upload: Upload) -> None:
        """An upload's content: within the size limit, a zip archive or Python text."""
        self.check_upload_meta(upload.filename, None)
        self._check_size(len(upload.data))
        if not upload.data:
            raise InvalidSource("the file is empty", params=ErrorParams(reason="empty"))
        if upload.kind is SourceKind.ZIP:
            # What is inside (paths escaping the folder, symlinks, sizes) is the runner's to judge.
            if not upload.data.startswith(_ZIP_MAGIC):
                raise InvalidSource("the file is not a .zip archive", params=ErrorParams(reason="not_zip"))
        elif not _python_text(upload.data):
            raise InvalidSource(
                "this is a binary file, not Python source; send a .py file",
                params=ErrorParams(reason="binary"),
            )
