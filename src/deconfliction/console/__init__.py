"""The coordination centre's console: one page, plain JavaScript, served by the service itself.

``GET /`` is the page; its script and style sheet are under ``/console/``, and Leaflet (from
the ``xstatic-leaflet`` package) under ``/console/leaflet/``. Nothing is loaded from any other
host: the page's Content-Security-Policy allows only this origin, so a console on a network
without internet works as it does anywhere else. The one exception is a site's own tile
server, when the ``console_tiles_url`` setting names one: its origin, for images only. See
docs/console.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import xstatic.pkg.leaflet
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from deconfliction.errors import InvalidInput

HERE = Path(__file__).parent
LEAFLET = Path(xstatic.pkg.leaflet.BASE_DIR)
CONFIG_SLOT = '<script id="console-config" type="application/json">{}</script>'
"""Where the page's settings go: data, not script (the policy runs no inline script)."""


def policy(images_from: str = "") -> str:
    """Only this origin, for everything (and a tile server's origin for images): the browser refuses anything else.

    Leaflet sets inline styles.
    """
    images = "'self' data:" + (f" {images_from}" if images_from else "")
    return (
        f"default-src 'self'; img-src {images}; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


CSP = policy()
HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
router = APIRouter(include_in_schema=False)


def tiles_origin(url: str) -> str:
    """The origin a tile URL template loads from, as a CSP source (``{s}`` subdomains as ``*``); refused unless http(s)."""
    parts = urlsplit(url)
    host = parts.netloc.replace("{s}", "*")
    if parts.scheme not in ("http", "https") or not host or any(c in host for c in " ;,'\"{}"):
        raise InvalidInput(
            "console_tiles_url is an http(s) URL template such as https://tiles.example.org/{z}/{x}/{y}.png",
            field="DECONFLICT_CONSOLE_TILES_URL",
        )
    return f"{parts.scheme}://{host}"


@router.get("/")
def page(request: Request) -> HTMLResponse:
    """The console, with its settings in the page (the tile URL, if any)."""
    tiles = request.app.state.service.settings.console_tiles_url
    config = json.dumps({"tiles_url": tiles or None}).replace("<", "\\u003c")
    html = (HERE / "index.html").read_text(encoding="utf-8").replace(CONFIG_SLOT, CONFIG_SLOT.replace("{}", config))
    headers = HEADERS if not tiles else {**HEADERS, "Content-Security-Policy": policy(tiles_origin(tiles))}
    return HTMLResponse(html, headers=headers)


@router.get("/console/console.js")
def script() -> FileResponse:
    return FileResponse(HERE / "console.js", media_type="text/javascript", headers=HEADERS)


@router.get("/console/console.css")
def style() -> FileResponse:
    return FileResponse(HERE / "console.css", media_type="text/css", headers=HEADERS)


def mount_console(app: FastAPI, tiles_url: str = "") -> None:
    """Serve the console at ``/`` and Leaflet's files at ``/console/leaflet/``; a bad tile URL is refused here, at start."""
    if tiles_url:
        tiles_origin(tiles_url)
    app.include_router(router)
    app.mount("/console/leaflet", StaticFiles(directory=LEAFLET), name="leaflet")
