"""Persistence behind one interface: ``open_store("picture.db")``."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from deconfliction.errors import InvalidInput
from deconfliction.stores.base import Store
from deconfliction.stores.memory import MemoryStore
from deconfliction.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store", "default_snapshot", "display_name", "open_store"]
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def display_name(db: str | Path) -> str:
    """A ``--db`` value fit to print: a URL without its password."""
    text = str(db)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def default_snapshot(db: str | Path) -> Path | None:
    """Where a node on ``db`` keeps its snapshot unless told (``--snapshot``); None for a store in memory.

    Beside a SQLite file (``DB.snapshot``). Nodes share a PostgreSQL database but not a disk: each keeps its own
    in the user's state folder (``$XDG_STATE_HOME/deconfliction``, ``~/.local/state/deconfliction`` by default),
    named after the database's host, port and name.
    """
    text = str(db)
    if text == ":memory:":
        return None
    if not text.startswith(POSTGRES_SCHEMES):
        return Path(text + ".snapshot")
    parts = urlsplit(text)
    named = f"{parts.hostname or 'localhost'}-{parts.port or 5432}-{parts.path.strip('/') or parts.username or 'postgres'}"
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "deconfliction" / (re.sub(r"[^\w.-]", "_", named) + ".snapshot")


def open_store(db: str | Path) -> Store:
    """A store from a ``--db`` value: ``:memory:``, a ``postgresql://`` URL, or a SQLite file path."""
    text = str(db)
    if text == ":memory:":
        return MemoryStore()
    if text.startswith(POSTGRES_SCHEMES):
        from deconfliction.stores.postgres import PostgresStore  # psycopg is loaded only for a PostgreSQL store

        return PostgresStore(text)
    if "://" in text:
        raise InvalidInput(f"{text.split('://')[0]!r} stores are not supported: a SQLite file path or postgresql://", field="db")
    return SQLiteStore(text)
