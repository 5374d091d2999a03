"""Podium's durable store: schema, migrations and repository functions."""

from webhook_server.store.db import Store, StoreUnavailable

__all__ = ["Store", "StoreUnavailable"]
