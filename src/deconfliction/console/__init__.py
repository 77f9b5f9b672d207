"""The coordination centre's console: one page, plain JavaScript, served by the service itself.

``GET /`` is the page; its script and style sheet are under ``/console/``, and Leaflet (from
the ``xstatic-leaflet`` package) under ``/console/leaflet/``. Nothing is loaded from any other
host: the page's Content-Security-Policy allows only this origin, so a console on a network
without internet works as it does anywhere else. See docs/console.md.
"""

from __future__ import annotations

from pathlib import Path

import xstatic.pkg.leaflet
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
LEAFLET = Path(xstatic.pkg.leaflet.BASE_DIR)
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Only this origin, for everything: the browser itself refuses anything from elsewhere. Leaflet sets inline styles."""

HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    """The console."""
    return FileResponse(HERE / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/console/console.js")
def script() -> FileResponse:
    return FileResponse(HERE / "console.js", media_type="text/javascript", headers=HEADERS)


@router.get("/console/console.css")
def style() -> FileResponse:
    return FileResponse(HERE / "console.css", media_type="text/css", headers=HEADERS)


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/`` and Leaflet's files at ``/console/leaflet/``."""
    app.include_router(router)
    app.mount("/console/leaflet", StaticFiles(directory=LEAFLET), name="leaflet")
