"""The runner's key pair: its file (RUNNER_KEY_FILE) and its public half, published in Redis.

The file is the root of trust for sealed env values: whoever reads it can open every secret in
Redis. It is created once, mode 0600, and never rewritten. Two runners starting at once on one
volume race to create it: O_EXCL lets exactly one win, and the other reads what the winner wrote.
Two runners on one Redis must hold the same key (either may open any record), so the public key is
published with SET NX and a runner whose key differs from the published one refuses to start.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import stat
import time
from pathlib import Path

from nacl.public import PrivateKey
from redis.asyncio import Redis

from protocol import keys
from protocol.sealing import encode_public_key

log = logging.getLogger(__name__)

# How long a runner that lost the O_EXCL race waits for the winner's write to land.
_READ_WAIT_S = 5.0


class KeyMismatch(RuntimeError):
    """Another runner published a different public key on this Redis."""


class KeyFileError(RuntimeError):
    """The key file cannot be created or read."""


def load_or_create(path: Path) -> PrivateKey:
    """The private key in path, created (mode 0600, O_EXCL) when the file does not exist yet."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    except OSError as e:
        raise KeyFileError(f"cannot create the key file {path}: {e.strerror}") from e
    key = PrivateKey.generate()
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64encode(bytes(key)) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    log.info("created the runner key file %s", path)
    return key


def _read(path: Path) -> PrivateKey:
    deadline = time.monotonic() + _READ_WAIT_S
    while True:
        try:
            text = path.read_bytes().strip()
        except OSError as e:
            raise KeyFileError(f"cannot read the key file {path}: {e.strerror}") from e
        # Empty: another runner won the O_EXCL race and has not written yet.
        if text or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    try:
        raw = base64.b64decode(text, validate=True)
        key = PrivateKey(raw)
    except (binascii.Error, ValueError, TypeError) as e:
        raise KeyFileError(f"the key file {path} does not hold a runner key") from e
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the key file %s is readable by others (mode %o); chmod 600 it", path, mode)
    return key


async def publish(redis: Redis, key: PrivateKey) -> None:
    """Publish the public key unless one is; KeyMismatch when the published one differs."""
    mine = encode_public_key(key.public_key)
    if await redis.set(keys.RUNNER_PUBKEY, mine, nx=True):
        log.info("published the runner public key")
        return
    current = await redis.get(keys.RUNNER_PUBKEY)
    theirs = current.decode() if isinstance(current, bytes) else current
    if theirs is not None and theirs != mine:
        raise KeyMismatch(
            f"another runner published a different public key in Redis ({keys.RUNNER_PUBKEY}); "
            "give every runner the same RUNNER_KEY_FILE, or delete that key if this one is right"
        )
