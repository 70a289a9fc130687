"""A small synchronous client of the botrunner HTTP API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

NDJSON = "application/x-ndjson"
USER_AGENT = "botrunner-cli/0.1"
# Deploys may build for minutes, and the server bounds them itself; everything else is quick.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEPLOY_TIMEOUT = httpx.Timeout(None, connect=5.0)


class ApiError(Exception):
    """An error the API answered, or one met on the way to it, as a code and a sentence."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        detail: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field
        self.detail = detail
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {
            "error": {"code": self.code, "message": self.message, "field": self.field, "detail": self.detail}
        }

    @classmethod
    def from_body(cls, status: int, body: Any) -> ApiError:
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and "code" in err:
            return cls(
                str(err["code"]),
                str(err.get("message", "")),
                field=err.get("field"),
                detail=err.get("detail"),
                status=status,
            )
        return cls(f"HTTP_{status}", "the server answered with an unexpected error", status=status)


def _error(resp: httpx.Response) -> ApiError:
    try:
        body = resp.json()
    except ValueError:
        body = None
    return ApiError.from_body(resp.status_code, body)


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            timeout=DEFAULT_TIMEOUT,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise ApiError("TIMEOUT", f"the API at {self.url} did not answer in time") from e
        except httpx.HTTPError as e:
            raise ApiError(
                "CONNECTION_FAILED", f"cannot reach the API at {self.url} ({e}); check --url or BOTRUNNER_URL"
            ) from e
        if resp.status_code >= 400:
            raise _error(resp)
        return resp

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw answer of a call that succeeded; an ApiError otherwise."""
        return self._send(method, path, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    def get_bytes(self, path: str, **kwargs: Any) -> bytes:
        return self._send("GET", path, **kwargs).content

    def list_bots(self) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/api/bots")
        return result

    def quota(self) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", "/api/quota")
        return result

    def bot(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/api/bots/{name}")
        return result

    def action(self, name: str, action: str) -> dict[str, Any]:
        timeout = DEPLOY_TIMEOUT if action == "start" else DEFAULT_TIMEOUT
        result: dict[str, Any] = self.json("POST", f"/api/bots/{name}/{action}", timeout=timeout)
        return result

    def delete(self, name: str) -> None:
        self._send("DELETE", f"/api/bots/{name}")

    def set_env(self, name: str, patch: dict[str, str | None]) -> dict[str, Any]:
        result: dict[str, Any] = self.json("PUT", f"/api/bots/{name}/env", json=patch)
        return result

    def logs(
        self, name: str, *, tail: int, since: str | None, release: int | None = None
    ) -> tuple[list[str], float | None]:
        """Log lines, and the server time they were read at (the next `since` when following)."""
        params: dict[str, Any] = {"tail": tail}
        if since is not None:
            params["since"] = since
        if release is not None:
            params["release"] = release
        resp = self._send("GET", f"/api/bots/{name}/logs", params=params, headers={"Accept": "text/plain"})
        read_at = resp.headers.get("x-log-time")
        return resp.text.splitlines(), float(read_at) if read_at else None

    def follow_logs(self, name: str, *, tail: int, since: str | None) -> Iterator[str]:
        """The last lines, then each new one as the bot writes it (`logs?follow=true`, NDJSON)."""
        params: dict[str, Any] = {"tail": tail, "follow": "true"}
        if since is not None:
            params["since"] = since
        for event in self._stream("GET", f"/api/bots/{name}/logs", params=params):
            if "error" in event:  # the stream ended on an error after it had opened
                raise ApiError.from_body(200, event)
            yield str(event.get("line", ""))

    def releases(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.json("GET", f"/api/bots/{name}/releases")["releases"]
        return result

    def rollback(self, name: str, release: int | None, *, wait_health: bool = False) -> dict[str, Any]:
        params = {"wait": "health"} if wait_health else {}
        body = {"release": release} if release is not None else {}
        result: dict[str, Any] = self.json(
            "POST", f"/api/bots/{name}/rollback", json=body, params=params, timeout=DEPLOY_TIMEOUT
        )
        return result

    def deploy(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, Any],
        file: Path | None = None,
    ) -> Iterator[dict[str, Any]]:
        """A start or update, streamed: progress events, then one result or error event."""
        files = None
        handle = None
        try:
            if file is not None:
                handle = file.open("rb")
                files = {"file": (file.name, handle, "application/octet-stream")}
            yield from self._stream(method, path, data=data, files=files)
        finally:
            if handle is not None:
                handle.close()

    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        headers = {"Accept": f"{NDJSON}, application/json;q=0.5"}
        try:
            with self._http.stream(method, path, headers=headers, timeout=DEPLOY_TIMEOUT, **kwargs) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _error(resp)
                if not resp.headers.get("content-type", "").startswith(NDJSON):
                    resp.read()
                    yield {"type": "result", "bot": resp.json()}
                    return
                for line in resp.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as e:
            raise ApiError(
                "CONNECTION_FAILED",
                f"lost the API at {self.url} ({e}); check the bot with `botrunner status`",
            ) from e
