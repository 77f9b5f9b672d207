"""Persistence behind one interface: ``open_store("picture.db")``."""

from __future__ import annotations

from pathlib import Path

from deconfliction.errors import InvalidInput
from deconfliction.stores.base import Store
from deconfliction.stores.memory import MemoryStore
from deconfliction.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "Store", "open_store"]


def open_store(db: str | Path) -> Store:
    """A store from a ``--db`` value: ``:memory:`` or a SQLite file path."""
    text = str(db)
    if text == ":memory:":
        return MemoryStore()
    if "://" in text:
        raise InvalidInput(f"{text!r}: only SQLite file paths are supported so far", field="db")
    return SQLiteStore(text)
