"""Names and labels of everything the runner creates in Docker: one place to look them up."""

from __future__ import annotations

LABEL_MANAGED = "botrunner.managed"
LABEL_OWNER = "botrunner.owner"
LABEL_BOT = "botrunner.bot"
LABEL_INSTANCE = "botrunner.instance"
LABEL_REQUEST = "botrunner.request"
LABEL_KIND = "botrunner.kind"  # container | app-volume | data-volume | image | build


def container_name(owner: int, name: str) -> str:
    # Owner ids are digits and bot names cannot hold '_', so names never collide across owners.
    return f"botrunner-{owner}-{name}"


def app_volume(owner: int, name: str) -> str:
    return f"botrunner-{owner}-{name}_app"


def data_volume(owner: int, name: str) -> str:
    return bot_volume(owner, name, "data")


def bot_volume(owner: int, name: str, role: str) -> str:
    """A bot's volume by role: "data" (/data), "data-prev" (what a restore replaced), "backups"."""
    return f"botrunner-{owner}-{name}_{role}"


def base_labels(instance: str, owner: int, name: str) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_INSTANCE: instance,
        LABEL_OWNER: str(owner),
        LABEL_BOT: name,
    }
