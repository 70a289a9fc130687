"""Mini App initData: validated as Telegram specifies, and judged like a bearer token's owner."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qsl, urlencode

import pytest

from controlbot.api import tma
from controlbot.gateway import Channel
from protocol.errors import BotrunnerError, ErrorCode
from tests.fakes.webapp import make_init_data
from tests.fixtures.api_app import ADMIN, BOT_TOKEN, STRANGER, USER, Api, api, error_of, make_settings

pytestmark = pytest.mark.unit
__all__ = ["api"]  # the fixture, re-used

OTHER_TOKEN = "654321:TEST-some-other-bot-token-bbbbbbbb"


def _unauthorized(init_data: str, **kw: float) -> None:
    with pytest.raises(BotrunnerError) as err:
        tma.validate(init_data, BOT_TOKEN, max_age=86400, **kw)
    assert err.value.code is ErrorCode.UNAUTHORIZED


def test_the_hash_is_telegrams_recipe() -> None:
    """Written out from the spec, independently of tma.sign."""
    data = make_init_data(BOT_TOKEN, USER)
    fields = dict(parse_qsl(data))
    secret = hmac.new(b"WebAppData", BOT_TOKEN.encode(), hashlib.sha256).digest()
    check = "\n".join(f"{k}={fields[k]}" for k in sorted(fields) if k != "hash")
    assert fields["hash"] == hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()


def test_valid_init_data_names_the_user() -> None:
    user = tma.validate(make_init_data(BOT_TOKEN, USER, language_code="ru"), BOT_TOKEN, max_age=86400)
    assert (user.id, user.language_code) == (USER, "ru")


def test_tampered_field_is_refused() -> None:
    fields = dict(parse_qsl(make_init_data(BOT_TOKEN, USER)))
    fields["user"] = fields["user"].replace(str(USER), str(ADMIN))
    _unauthorized(urlencode(fields))


def test_foreign_bot_token_is_refused() -> None:
    _unauthorized(make_init_data(OTHER_TOKEN, USER))


def test_expired_auth_date_is_refused() -> None:
    _unauthorized(make_init_data(BOT_TOKEN, USER, auth_date=time.time() - 86400 - 60))
    tma.validate(make_init_data(BOT_TOKEN, USER, auth_date=time.time() - 3600), BOT_TOKEN, max_age=86400)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: "",
        lambda d: d.replace("hash=", "hush="),
        lambda d: d + "&hash=00",  # a repeated field: which one was signed?
        lambda d: d[:-1] + ("0" if d[-1] != "0" else "1"),
        lambda d: d + "&x=" + "a" * tma.MAX_INIT_DATA,
        lambda d: d.replace("hash=", "hash=%C3%A9"),  # not ASCII
    ],
)
def test_malformed_init_data_is_refused(mangle: object) -> None:
    assert callable(mangle)
    _unauthorized(mangle(make_init_data(BOT_TOKEN, USER)))


def test_only_the_tma_scheme_is_taken() -> None:
    settings = make_settings()
    assert tma.caller_from_authorization("Bearer abc", settings) is None
    assert tma.caller_from_authorization(None, settings) is None
    caller = tma.caller_from_authorization(f"tma {make_init_data(BOT_TOKEN, ADMIN)}", settings)
    assert caller is not None
    assert (caller.id, caller.admin, caller.channel, caller.locale) == (ADMIN, True, Channel.WEBAPP, "en")


def test_a_user_not_allowed_is_forbidden_like_a_token_owner() -> None:
    with pytest.raises(BotrunnerError) as err:
        tma.caller_from_authorization(f"tma {make_init_data(BOT_TOKEN, STRANGER)}", make_settings())
    assert err.value.code is ErrorCode.FORBIDDEN


@pytest.mark.parametrize(("code", "locale"), [("ru", "ru"), ("ru-RU", "ru"), ("de", "en"), (None, "en")])
def test_locale_of(code: str | None, locale: str) -> None:
    assert tma.locale_of(code) == locale


async def test_the_api_takes_tma_auth(api: Api) -> None:
    assert (await api.deploy("mini")).status_code == 201
    headers = {"Authorization": f"tma {make_init_data(BOT_TOKEN, USER)}"}
    resp = await api.client.get("/api/bots", headers=headers)
    assert resp.status_code == 200, resp.text
    assert [b["name"] for b in resp.json()["bots"]] == ["mini"]
    resp = await api.client.post("/api/bots/mini/stop", headers=headers)
    assert (resp.status_code, resp.json()["state"]) == (200, "stopped")


@pytest.mark.parametrize(
    "init_data",
    [
        make_init_data(OTHER_TOKEN, USER),
        make_init_data(BOT_TOKEN, USER, auth_date=time.time() - 2 * 86400),
        make_init_data(BOT_TOKEN, USER).replace("Alice", "Mallory"),
    ],
    ids=["foreign", "expired", "tampered"],
)
async def test_bad_init_data_is_401(api: Api, init_data: str) -> None:
    resp = await api.client.get("/api/bots", headers={"Authorization": f"tma {init_data}"})
    assert resp.status_code == 401
    assert error_of(resp)["code"] == "UNAUTHORIZED"
