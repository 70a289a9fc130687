"""`/app/`: the Telegram Mini App dashboard, static files shipped in `controlbot/webapp/static/`.

The page holds no secret and needs no auth to load; its data comes from the /api/... routes,
which it calls with `Authorization: tma <initData>`. Only the files listed here are served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from starlette.exceptions import HTTPException

STATIC_DIR = Path(__file__).resolve().parents[2] / "webapp" / "static"
PREFIX = "/app"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "logtail.js": "text/javascript; charset=utf-8",
    "i18n.en.json": "application/json",
    "i18n.ru.json": "application/json",
}
# Revalidated on each open, so a new release shows at once inside Telegram's web view.
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.get(PREFIX)
async def app_root() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get(f"{PREFIX}/")
async def app_index() -> FileResponse:
    return _file("index.html")


@router.get(PREFIX + "/{file}")
async def app_file(file: str) -> FileResponse:
    if file not in FILES:
        raise HTTPException(404)
    return _file(file)


def _file(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type=FILES[name], headers=HEADERS)
