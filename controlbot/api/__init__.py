"""The HTTP API the control bot serves: the same operations as the chat, for the CLI and CI."""

from controlbot.api.app import create_app
from controlbot.api.server import serve

__all__ = ["create_app", "serve"]
