"""Choosing a backend from a URL: `sqlite:///path` (default) or `mongodb://` / `mongodb+srv://`."""

from __future__ import annotations

from .base import Conflict, Store, StoreError, StoreUnavailable

__all__ = ["Conflict", "Store", "StoreError", "StoreUnavailable", "open_store"]


def open_store(url: str) -> Store:
    """Build (not yet open) the store for `url`; call `await store.open()` next."""
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from .mongo import MongoStore

        return MongoStore(url)
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url[len("sqlite:///"):])
    raise ValueError(f"db_url must start with sqlite:///, mongodb:// or mongodb+srv:// (got {url.split(':', 1)[0]!r})")
