"""initData as Telegram signs it for a Mini App, for tests: `make_init_data(token, user_id)`."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from controlbot.api.tma import sign


def make_init_data(
    bot_token: str,
    user_id: int,
    *,
    language_code: str = "en",
    auth_date: float | None = None,
    first_name: str = "Alice",
) -> str:
    """A URL-encoded initData string for user_id, signed with bot_token as Telegram would."""
    user = {"id": user_id, "first_name": first_name, "language_code": language_code}
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(user, separators=(",", ":"), ensure_ascii=False),
        "auth_date": str(int(time.time() if auth_date is None else auth_date)),
    }
    fields["hash"] = sign(fields, bot_token)
    return urlencode(fields)
