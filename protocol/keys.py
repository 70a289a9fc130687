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

# Runner heartbeats: see the "more than one runner" block at the end.
HEARTBEAT_INTERVAL = 2.0
HEARTBEAT_TTL = 6

# Per-requester replies stream: Progress and (last) Result JSON messages in field "data", for every
# request of one RunnerClient (one control-bot process, one benchmark ...). Writer: runner (XADD,
# MAXLEN ~ REPLIES_MAXLEN, EXPIRE REPLIES_TTL s on each write). Reader: that client's one listener
# (XREAD BLOCK), which routes each message by request id. Named in Command.reply_to.
REPLIES_TTL = 600
REPLIES_MAXLEN = 10_000
REPLIES_PATTERN = rf"^{PREFIX}:replies:[0-9a-f]{{32}}$"


def replies(client_id: str) -> str:
    return f"{PREFIX}:replies:{client_id}"


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


# Set while the owner was told, within the hour, that a bot's output shows Telegram's 409 Conflict.
# Writer: runner (SET NX, TTL 3600 s), so the notice goes out at most once an hour per bot.
def conflict_notice(owner: int, name: str) -> str:
    return f"{PREFIX}:conflict:{owner}:{name}"


# A /data archive on its way between the runner (backup) and the requester (restore), as a stream
# of ARCHIVE_CHUNK-byte entries. Writer: the side that sends it; TTL ARCHIVE_TTL s.
ARCHIVE_TTL = 600
ARCHIVE_CHUNK = 1024 * 1024


def archive(request_id: str) -> str:
    return f"{PREFIX}:archive:{request_id}"


# -- More than one runner (fair share and two runners, one queue) ---------------------------
# Each runner's heartbeat: JSON RunnerHealth. Writer: that runner every HEARTBEAT_INTERVAL s,
# TTL HEARTBEAT_TTL s; deleted on a clean stop.
def heartbeat(runner_id: str) -> str:
    return f"{PREFIX}:runner:{runner_id}:heartbeat"


# Registry of runners: sorted set, runner id -> time of its last beat (epoch s). Writer: each
# runner with its beat; entries older than RUNNERS_FORGET_S are trimmed by any runner. Readers find
# every live runner here (/system, RunnerClient.health) without a SCAN.
RUNNERS = f"{PREFIX}:runners"
RUNNERS_FORGET_S = 3600


# A bot's lock: a lease holding a random token, PX = the runner's RUNNER_CLAIM_IDLE_MS, renewed
# every third of it while a command (or reconcile) works on the bot, deleted (token checked) after.
def bot_lock(owner: int, name: str) -> str:
    return f"{PREFIX}:lock:{owner}:{name}"


# The leader lease: a runner id + token. The leader alone runs the cluster's background work (the
# event watcher's alerts, reconcile, pruning, stats). Same TTL and renewal as bot_lock.
LEADER = f"{PREFIX}:leader"


# The event watcher's memory, shared so any leader reads what another runner did:
# - a container's death the runner caused itself (stop, restart, update): the epoch seconds it was
#   announced at, TTL EXPECTED_STOP_TTL; cleared by the container's next start event
# - a bot's crash streak: hash {streak, loop_reported}; deleted when a user starts the bot again,
#   TTL CRASH_STREAK_TTL from the last crash.
EXPECTED_STOP_TTL = 120
# - how far the engine's events were watched: epoch seconds, renewed every EVENTS_WATCHED_EVERY
#   while a watcher is subscribed; the next one catches up on deaths after it (runner/events.py).
EVENTS_WATCHED = f"{PREFIX}:events-watched"
EVENTS_WATCHED_EVERY = 1.0
EVENTS_WATCHED_TTL = 86_400
CRASH_STREAK_TTL = 86_400


def expected_stop(container_id: str) -> str:
    return f"{PREFIX}:expected-stop:{container_id}"


def crash_streak(owner: int, name: str) -> str:
    return f"{PREFIX}:crash-streak:{owner}:{name}"


# -- sealed secrets (#10) --
# The runner's public key (base64 of 32 bytes), so front ends can seal env values and git URLs
# with credentials before anything reaches Redis. Writer: runner, SET NX at start and on every
# heartbeat (two runners must agree; see runner/keys.py). Readers: control bot, HTTP API. No TTL.
RUNNER_PUBKEY = f"{PREFIX}:runner:pubkey"
# -- rate limits (issue 10, "Rate limits on the chat and the API") --------------------------------
# State-changing commands of one user in one minute window (INCR; EXPIRE RATE_WINDOW_TTL s).
# Writer: control bot (chat and API alike).
RATE_WINDOW_TTL = 120


def rate(user: int, window: int) -> str:
    return f"{PREFIX}:rate:{user}:{window}"


# Set while the chat's "slow down" message of one window has been sent (SET NX, EX RATE_WINDOW_TTL),
# so a user over the limit is told once per minute. Writer: control bot.
def rate_notice(user: int, window: int) -> str:
    return f"{PREFIX}:rate-notice:{user}:{window}"


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
