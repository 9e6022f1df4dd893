"""OMS database fixtures (the marker policy and PostgreSQL factory are in the root conftest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ai_trading.oms.intent_store import IntentStore


# OMS databases. Tests take `oms_database_url` (or `oms_store`) and run once per backend;
# the PostgreSQL run carries the `postgres` marker.
OMS_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def oms_postgres_url(create_postgres_database: Callable[[str], str]) -> str:
    """A fresh database on the PostgreSQL server for this test session, dropped afterwards."""
    return create_postgres_database("ai_trading_test")


@pytest.fixture(params=OMS_BACKENDS)
def oms_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an OMS database per backend: a new SQLite file (WAL, shareable between
    processes), or the session's fresh PostgreSQL database (shared by the session's tests:
    each test establishes the revision it needs)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'oms.sqlite'}"
    return str(request.getfixturevalue("oms_postgres_url"))


@pytest.fixture
def oms_store(oms_database_url: str) -> Iterator[IntentStore]:
    """An empty intent store at the head revision, per backend."""
    from ai_trading.config import OmsConfig
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.migrate import upgrade
    from ai_trading.oms.schema import metadata

    config = OmsConfig(dsn=oms_database_url)
    upgrade(config)
    store = IntentStore.open(config)
    with store.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(table.delete())
    try:
        yield store
    finally:
        store.close()
