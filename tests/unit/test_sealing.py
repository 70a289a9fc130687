"""Sealing (protocol/sealing.py), the runner's key file and secrets (runner/keys.py, runner/secrets.py)."""

from __future__ import annotations

import hashlib
import stat
import threading
from pathlib import Path

import pytest
from nacl.public import PrivateKey

from controlbot import formatting
from controlbot.gateway import Caller, DeployRequest, Gateway, Target
from protocol.errors import BotrunnerError, ErrorCode, InvalidEnv
from protocol.models import Op, SourceKind, SourceSpec
from protocol.sealing import has_userinfo, is_sealed, mask, seal, seal_git_url
from runner import keys as runner_keys
from runner.secrets import Masker, Secrets
from tests.fakes.runner import FakeRunner

pytestmark = pytest.mark.unit

TOKEN = "123456:TEST-sealing-aaaaaaaaaaaaaaaaaaaaaaaaaa"


def test_only_the_key_holder_opens_a_sealed_value() -> None:
    runner, other = Secrets.ephemeral(), Secrets.ephemeral()
    sealed = seal("hunter22-secret", runner.public_key)
    assert is_sealed(sealed) and "hunter22" not in sealed
    assert seal("hunter22-secret", runner.public_key) != sealed  # randomised: no equality leaks
    assert runner.open(sealed) == "hunter22-secret"
    assert seal(sealed, runner.public_key) == sealed  # idempotent
    with pytest.raises(InvalidEnv) as info:
        other.open(sealed, "SECRET")
    assert info.value.code is ErrorCode.INVALID_ENV and "SECRET" in info.value.message
    assert runner.open("plain") == "plain"  # a record from before sealing still opens


def test_hmac_is_deterministic_and_keyed() -> None:
    key = PrivateKey.generate()
    a, b, other = Secrets(key), Secrets(key), Secrets.ephemeral()
    assert a.hmac(TOKEN) == b.hmac(TOKEN) != other.hmac(TOKEN)
    assert a.hmac(TOKEN) != a.hmac(TOKEN + "x")
    assert a.hmac(TOKEN) != hashlib.sha256(TOKEN.encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "shown"),
    [(TOKEN, "123•••"), ("secret-value", "sec•••"), ("12345678", "••••••"), ("ab", "••••••")],
)
def test_masks_show_at_most_three_characters(value: str, shown: str) -> None:
    assert mask(value) == shown
    assert formatting.mask(value) == shown
    assert formatting.mask("") == "''"


def test_masker_masks_values_of_four_or_more_longest_first() -> None:
    masker = Masker(["abc", "hunter22", "hunter22-and-more"])
    text = masker("pw=hunter22-and-more, short=abc, pw2=hunter22")
    assert "hunter22" not in text and "hun•••" in text
    assert "short=abc" in text  # too short to mask: it would garble any log


def test_a_secrets_masker_opens_sealed_values_and_skips_foreign_ones() -> None:
    runner = Secrets.ephemeral()
    env = {"A": runner.seal("s3cret-value"), "B": Secrets.ephemeral().seal("other-value")}
    assert runner.masker(env)("x s3cret-value y") == "x s3c••• y"


def test_git_urls_with_credentials_are_sealed() -> None:
    key = Secrets.ephemeral()
    assert has_userinfo("https://user:pw@example.com/r.git")
    assert not has_userinfo("https://example.com/r.git") and not has_userinfo(None)
    sealed = seal_git_url("https://user:pw@example.com/r.git", key.public_key)
    assert sealed is not None and is_sealed(sealed)
    assert key.open_url(sealed) == "https://user:pw@example.com/r.git"
    assert seal_git_url("https://example.com/r.git", key.public_key) == "https://example.com/r.git"


async def test_the_gateway_sends_env_and_git_credentials_sealed() -> None:
    runner = FakeRunner()
    gateway = Gateway(runner, bot_token=TOKEN, max_upload_bytes=1 << 20)  # type: ignore[arg-type]
    caller = Caller(id=7, admin=False)
    spec = SourceSpec(kind=SourceKind.GIT, git_url="https://me:pw@example.com/r.git")
    req = DeployRequest(op=Op.START, target=Target(7, "sealed"), env={"SECRET": "hunter22"}, source=spec)
    await gateway.deploy(caller, req)
    sent = runner.sealed[-1]
    assert sent.env is not None and is_sealed(sent.env["SECRET"])
    assert sent.source is not None and sent.source.git_url is not None and is_sealed(sent.source.git_url)
    assert "hunter22" not in sent.model_dump_json() and "me:pw" not in sent.model_dump_json()
    assert runner.commands[-1].env == {"SECRET": "hunter22"}  # what the runner opens
    await gateway.set_env(caller, Target(7, "sealed"), {"EXTRA": "more-secret"}, [])
    assert "more-secret" not in runner.sealed[-1].model_dump_json()


async def test_without_a_published_key_a_deploy_is_runner_unavailable() -> None:
    class NoKey:
        async def get(self, key: str) -> None:
            return None

    runner = FakeRunner()
    runner.redis = NoKey()  # type: ignore[assignment]
    gateway = Gateway(runner, bot_token=TOKEN, max_upload_bytes=1 << 20)  # type: ignore[arg-type]
    with pytest.raises(BotrunnerError) as info:
        await gateway.set_env(Caller(id=7, admin=False), Target(7, "x"), {"A": "value"}, [])
    assert info.value.code is ErrorCode.RUNNER_UNAVAILABLE
    assert runner.sealed == []  # nothing was sent


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "runner.key"
    key = runner_keys.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert bytes(runner_keys.load_or_create(path)) == bytes(key)


def test_runners_racing_for_the_key_file_agree(tmp_path: Path) -> None:
    path = tmp_path / "runner.key"
    got: list[bytes] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        got.append(bytes(runner_keys.load_or_create(path)))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1


def test_a_damaged_key_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "runner.key"
    path.write_text("not a key\n")
    with pytest.raises(runner_keys.KeyFileError, match="does not hold a runner key"):
        runner_keys.load_or_create(path)


async def test_plain_records_from_before_sealing_are_sealed() -> None:
    from protocol.models import SourceInfo
    from runner.operations.env import seal_plain_records
    from runner.state import BotRecord

    secrets = Secrets.ephemeral()
    plain = BotRecord(
        owner=1,
        name="old",
        source=SourceInfo(kind=SourceKind.GIT),
        env={"TOKEN": TOKEN},
        image="img",
        entrypoint="bot.py",
        request_id="r",
        git_url="https://me:pw@example.com/r.git",
    )
    sealed = plain.model_copy(update={"name": "new", "env": secrets.seal_env({"A": "b"}), "git_url": None})

    class Store:
        def __init__(self) -> None:
            self.saved: list[BotRecord] = []

        async def all_records(self) -> list[BotRecord]:
            return [plain, sealed]

        async def save(self, rec: BotRecord) -> None:
            self.saved.append(rec)

    store = Store()
    assert await seal_plain_records(store, secrets) == 1  # type: ignore[arg-type]
    [rec] = store.saved
    assert rec.name == "old" and TOKEN not in rec.model_dump_json() and "me:pw" not in rec.model_dump_json()
    assert secrets.open_env(rec.env) == {"TOKEN": TOKEN}
    assert secrets.open_url(rec.git_url) == "https://me:pw@example.com/r.git"
