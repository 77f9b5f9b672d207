"""deconfliction: a shared, trusted picture that checks every activity against every party's picture.

The public API is what ``__all__`` lists; everything else may change.
"""

from __future__ import annotations

__version__ = "0.1.0"

from deconfliction.clock import Clock, ManualClock, SystemClock
from deconfliction.errors import (
    AlreadyExists,
    DeconflictionError,
    Forbidden,
    InvalidInput,
    InvalidPosition,
    NotFound,
    OutOfOrder,
    StoreError,
    Unauthenticated,
)
from deconfliction.geo import LatLon, ParsedPosition, parse_position, to_mgrs
from deconfliction.service import Caller, Service
from deconfliction.settings import Settings
from deconfliction.stores import MemoryStore, SQLiteStore, Store, open_store

__all__ = [
    "AlreadyExists",
    "Caller",
    "Clock",
    "DeconflictionError",
    "Forbidden",
    "InvalidInput",
    "InvalidPosition",
    "LatLon",
    "ManualClock",
    "MemoryStore",
    "NotFound",
    "OutOfOrder",
    "ParsedPosition",
    "SQLiteStore",
    "Service",
    "Settings",
    "Store",
    "StoreError",
    "SystemClock",
    "Unauthenticated",
    "__version__",
    "open_store",
    "parse_position",
    "to_mgrs",
]
