"""The one gateway from every front end (chat, HTTP API, Mini App) to the runner.

Each operation is written once here: who may touch which bot, the checks every front end needs
(the control bot's own token, env and upload limits), the command, and its failure raised as a
`BotrunnerError` with a code and typed params. Front ends parse their input and render the outcome;
nothing else.

- `types`: the caller, the bot addressed, a deploy's request
- `base`: the clients, sealing, the runner's health, and `call`, the one way to the runner
- `checks`: env values and uploads, refused the same way for every front end
- `bots`, `data`, `insights`: the operations
"""

from __future__ import annotations

from controlbot.gateway.base import DEPLOY_QUEUE_WAIT_S, READS
from controlbot.gateway.bots import BotOps
from controlbot.gateway.data import DataOps
from controlbot.gateway.insights import InsightOps
from controlbot.gateway.types import (
    Caller,
    Channel,
    DeployRequest,
    Target,
    Upload,
    press_target,
    source_kind,
)


class Gateway(BotOps, DataOps, InsightOps):
    """Every operation a front end can ask for, on behalf of a caller."""


__all__ = [
    "DEPLOY_QUEUE_WAIT_S",
    "READS",
    "Caller",
    "Channel",
    "DeployRequest",
    "Gateway",
    "Target",
    "Upload",
    "press_target",
    "source_kind",
]
