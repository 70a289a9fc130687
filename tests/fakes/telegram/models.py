"""Bot API objects and errors of the fake: limits, messages, files and the state kept per token."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

MAX_TEXT = 4096  # characters after entity parsing
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile on the cloud Bot API
MAX_UPLOAD = 50 * 1024 * 1024  # sendDocument
MAX_PHOTO = 10 * 1024 * 1024  # sendPhoto
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a content and reply markup of the current message"
)


class ApiError(Exception):
    """Becomes a Bot API error response; raise it from a method handler."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def payload(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class File:
    """A file uploaded by a bot or sent by a fake user; getFile and the download route serve it."""

    file_id: str
    file_unique_id: str
    file_name: str
    data: bytes
    mime_type: str
    file_path: str

    def to_api(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.data),
        }


@dataclass
class Message:
    """A message in a chat in its current state; ``text`` is what the user sees (tags parsed away)."""

    chat: JSON
    message_id: int
    sender: JSON
    date: int
    text: str | None = None
    caption: str | None = None
    entities: list[JSON] = field(default_factory=list)  # of text, or of caption
    source: str | None = None  # text or caption exactly as sent, before parse_mode
    reply_markup: JSON | None = None
    document: File | None = None
    photo: File | None = None  # sendPhoto: the bytes as sent, so tests can decode the image
    reply_to: Message | None = None
    deleted: bool = False
    edits: int = 0
    edit_date: int | None = None

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    @property
    def from_bot(self) -> bool:
        return bool(self.sender.get("is_bot"))

    @property
    def buttons(self) -> list[JSON]:
        """Inline keyboard buttons, row by row, flattened."""
        return [b for row in (self.reply_markup or {}).get("inline_keyboard", []) for b in row]

    def button(self, text: str) -> JSON:
        """The first inline button whose text contains ``text``."""
        for b in self.buttons:
            if text in b["text"]:
                return b
        raise KeyError(f"no button with {text!r} in {[b['text'] for b in self.buttons]}")

    def to_api(self, nested: bool = True) -> JSON:
        data: JSON = {
            "message_id": self.message_id,
            "from": self.sender,
            "chat": self.chat,
            "date": self.date,
        }
        if self.edit_date is not None:
            data["edit_date"] = self.edit_date
        if self.text is not None:
            data["text"] = self.text
        if self.document is not None:
            data["document"] = self.document.to_api()
        if self.photo is not None:
            size = {k: v for k, v in self.photo.to_api().items() if k != "file_name" and k != "mime_type"}
            data["photo"] = [{**size, "width": 1, "height": 1}]
        if self.caption is not None:
            data["caption"] = self.caption
        if self.entities:
            data["entities" if self.text is not None else "caption_entities"] = self.entities
        if self.reply_markup and "inline_keyboard" in self.reply_markup:
            data["reply_markup"] = self.reply_markup
        if self.reply_to is not None and nested:
            data["reply_to_message"] = self.reply_to.to_api(nested=False)
        return data


@dataclass
class PollStats:
    """getUpdates bookkeeping for one token."""

    active: int = 0  # requests in flight right now
    max_active: int = 0
    polls: int = 0
    conflicts: int = 0  # polls terminated with 409 by a newer one


@dataclass
class _Upload:
    filename: str
    data: bytes


@dataclass
class _Bot:
    user: JSON
    updates: list[JSON] = field(default_factory=list)
    update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    chats: dict[int, list[Message]] = field(default_factory=dict)  # message_id == index + 1
    calls: list[tuple[str, JSON]] = field(default_factory=list)
    commands: dict[tuple[str, str], list[JSON]] = field(default_factory=dict)
    failures: dict[str, list[ApiError]] = field(default_factory=dict)
    blocked_by: set[int] = field(default_factory=set)
    callbacks: dict[str, JSON | None] = field(default_factory=dict)  # query id -> answer
    poller: object | None = None  # the newest getUpdates in flight
    terminated: set[object] = field(default_factory=set)
    stats: PollStats = field(default_factory=PollStats)
    # Wall-clock times for benchmarks: when each call arrived, and when each message update was
    # first handed to a poller (keyed by chat id and message id).
    call_times: list[tuple[float, str]] = field(default_factory=list)
    delivered: dict[tuple[int, int], float] = field(default_factory=dict)
    webhook_url: str = ""  # set: getUpdates answers 409, as Telegram does while a webhook is active


def _private_chat(user: JSON) -> JSON:
    keys = ("id", "first_name", "last_name", "username")
    return {"type": "private", **{k: user[k] for k in keys if user.get(k) is not None}}
