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


# -- metrics, resource history and the audit trail (issue 13) ---------------------------------------
# A bot's resource samples, sorted by time; member "<ts> <memory bytes> <cpu percent>". Writer: the
# runner's stats sampler (the leader only), one per RUNNER_STATS_INTERVAL. The raw set keeps the last
# HISTORY_RAW_S; older samples are averaged into HISTORY_BUCKET_S buckets in the coarse set, kept
# HISTORY_KEEP_S and capped at HISTORY_MAX_POINTS. Both expire HISTORY_KEEP_S after the last write,
# and are deleted with the bot.
HISTORY_RAW_S = 3600
HISTORY_BUCKET_S = 300
HISTORY_KEEP_S = 7 * 86400
HISTORY_MAX_POINTS = 4000


def history_raw(owner: int, name: str) -> str:
    return f"{PREFIX}:history:raw:{owner}:{name}"


def history_coarse(owner: int, name: str) -> str:
    return f"{PREFIX}:history:coarse:{owner}:{name}"


# When a bot restarted or crashed: sorted set of "<ts> <event type>" by ts, for the chart's marks.
# Writer: the runner's EventBus. Trimmed to HISTORY_KEEP_S; expires HISTORY_KEEP_S after the last write.
def history_events(owner: int, name: str) -> str:
    return f"{PREFIX}:history:events:{owner}:{name}"


# Counters behind botrunner_bot_restarts_total and botrunner_crashes_total: hash "<owner>:<name>" ->
# count. Writer: the runner's EventBus (HINCRBY). No TTL; a deleted bot's field is removed with it.
METRIC_RESTARTS = f"{PREFIX}:metrics:restarts"
METRIC_CRASHES = f"{PREFIX}:metrics:crashes"

# The audit trail: who did what to which bot, when, through which channel, and the result. Fields:
# actor, owner, bot, action, channel, result, code, detail (env keys, never values). Writer: the
# control bot's gateway (every command that changes state) and its token handlers. XADD MAXLEN ~
# AUDIT_MAX_ENTRIES (default 10000). No TTL.
AUDIT_STREAM = f"{PREFIX}:audit"
