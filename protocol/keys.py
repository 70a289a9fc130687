"""Every Redis key and stream botrunner uses, named in one place.

Each entry says who writes it and how long it lives.
"""

from __future__ import annotations

PREFIX = "botrunner"

# Stream of commands. Writer: control bot / HTTP API (XADD). Reader: runner consumer group.
# Entries are XACKed and XDELed once their effect is durable, so nothing (env, code) lingers.
COMMANDS_STREAM = f"{PREFIX}:commands"
COMMANDS_GROUP = "runners"

# Stream of asynchronous events (started, crashed, restarted, stopped ...). Writer: runner.
# Capped with MAXLEN ~ EVENTS_MAXLEN. Reader: control bot consumer group (crash alerts).
EVENTS_STREAM = f"{PREFIX}:events"
EVENTS_GROUP = "controlbot"
EVENTS_MAXLEN = 10_000

# Runner heartbeat: JSON RunnerHealth. Writer: runner every HEARTBEAT_INTERVAL s, TTL HEARTBEAT_TTL s.
HEARTBEAT = f"{PREFIX}:runner:heartbeat"
HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TTL = 6

# Per-request reply list: Progress and (last) Result JSON messages. Writer: runner (RPUSH),
# reader: the requester (BLPOP). TTL REPLY_TTL s.
REPLY_TTL = 600


def reply(request_id: str) -> str:
    return f"{PREFIX}:reply:{request_id}"


# Stored final Result of a request, for idempotent redelivery. Writer: runner. TTL RESULT_TTL s.
RESULT_TTL = 3600


def result(request_id: str) -> str:
    return f"{PREFIX}:result:{request_id}"


# Uploaded payload (source .py or .zip bytes) for a command. Writer: requester. TTL UPLOAD_TTL s.
# Kept out of the command stream so stream entries stay small. Deleted by the runner after use.
UPLOAD_TTL = 3600


def upload(request_id: str) -> str:
    return f"{PREFIX}:upload:{request_id}"


# Bot record of record (JSON BotRecord, env included). Writer: runner. No TTL; deleted on delete.
def bot(owner: int, name: str) -> str:
    return f"{PREFIX}:bot:{owner}:{name}"


# Source payload of a bot (bytes), so the runner can recreate a lost container. Writer: runner.
# No TTL; deleted on delete.
def bot_source(owner: int, name: str) -> str:
    return f"{PREFIX}:source:{owner}:{name}"


# Hash of an owner's bots: name -> request id of the start that created it. The quota counts its
# fields (HLEN), whatever each bot's state. Writer: runner, atomically in a Lua script. No TTL.
def owner_bots(owner: int) -> str:
    return f"{PREFIX}:owner:{owner}:bots"


# Set of all owners that own at least one bot. Writer: runner. No TTL.
OWNERS = f"{PREFIX}:owners"


# Per-user quota override (int). Writer: runner on an admin's set_quota. No TTL.
def quota(owner: int) -> str:
    return f"{PREFIX}:quota:{owner}"


# Latest resource sample of a running bot: "<memory bytes> <cpu percent>", read and written only by
# runner.state.StateStore. Writer: runner's sampler.
# TTL STATS_TTL s, so a stopped bot's numbers vanish on their own.
STATS_TTL = 60


def stats(owner: int, name: str) -> str:
    return f"{PREFIX}:stats:{owner}:{name}"


# API tokens: sha256(token) -> owner id, and owner id -> sha256(token). Writer: control bot. No TTL.
def api_token(token_hash: str) -> str:
    return f"{PREFIX}:apitoken:{token_hash}"


def api_token_owner(owner: int) -> str:
    return f"{PREFIX}:apitoken-owner:{owner}"


# A control-bot user's language ("en", "ru"), so messages sent unasked (crash alerts) speak it.
# Writer: control bot, when a user's language changes. No TTL.
def user_locale(user: int) -> str:
    return f"{PREFIX}:locale:{user}"


# Cached built images: hash tag -> last-used timestamp, for LRU pruning. Writer: runner. No TTL.
IMAGE_CACHE = f"{PREFIX}:images"


# -- Releases, health gates, kept logs (issue 12) ---------------------------------------------
# A bot's releases: hash, field "<N>" -> JSON runner.releases.Release (env as stored), field
# "current" -> N. Writer: runner. No TTL; pruned to RUNNER_KEEP_RELEASES, deleted with the bot.
def releases(owner: int, name: str) -> str:
    return f"{PREFIX}:releases:{owner}:{name}"


# A stored tree (the pack_files blob) of a bot's release, by its sha256, so releases with the same
# code (an /env change) share one copy. Writer: runner. No TTL; removed with the last release using it.
def release_tree(owner: int, name: str, sha: str) -> str:
    return f"{PREFIX}:tree:{owner}:{name}:{sha}"


# The last RUNNER_KEEP_LOG_LINES lines of a replaced release's output (text, capped in bytes).
# Writer: runner, when the release is replaced. No TTL; removed with the release.
def release_logs(owner: int, name: str, number: int) -> str:
    return f"{PREFIX}:rlogs:{owner}:{name}:{number}"


# An open health gate of a bot: JSON runner.healthgate.Gate with its deadline, so a restarted runner
# resumes it. Writer: runner. TTL: the grace period plus GATE_TTL_MARGIN s.
GATE_TTL_MARGIN = 120


def gate(owner: int, name: str) -> str:
    return f"{PREFIX}:gate:{owner}:{name}"


# Set of "<owner>:<name>" with an open gate, for the resume after a restart. Writer: runner. No TTL.
GATES = f"{PREFIX}:gates"


# A gate's verdict by the request that deployed: JSON protocol.models.Event (type GATE), for the
# API's ?wait=health. Writer: runner. TTL VERDICT_TTL s.
VERDICT_TTL = 3600


def verdict(request_id: str) -> str:
    return f"{PREFIX}:verdict:{request_id}"


# The chat message showing a deploy, by its request id: JSON {chat, message, locale, text, markup},
# so the alert consumer edits that message to the gate's verdict. Writer: control bot. TTL VERDICT_TTL.
def gate_message(request_id: str) -> str:
    return f"{PREFIX}:gate-msg:{request_id}"
