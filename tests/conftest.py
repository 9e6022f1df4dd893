"""Shared test fixtures and the marker policy.

``postgres`` tests read ``AI_TRADING_OMS_DSN``; they skip when it is unset and fail
instead when ``AI_TRADING_REQUIRE_POSTGRES=1`` (as CI sets it). ``rl`` tests skip only
when the ``rl`` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ai_trading.oms.intent_store import IntentStore

POSTGRES_DSN_ENV = "AI_TRADING_OMS_DSN"
REQUIRE_POSTGRES_ENV = "AI_TRADING_REQUIRE_POSTGRES"


def _postgres_dsn() -> str | None:
    dsn = os.environ.get(POSTGRES_DSN_ENV, "")
    return dsn if dsn.startswith("postgresql") else None


def _rl_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("stable_baselines3", "torch", "gymnasium"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    require_postgres = os.environ.get(REQUIRE_POSTGRES_ENV) == "1"
    have_postgres = _postgres_dsn() is not None
    have_rl = _rl_installed()
    for item in items:
        if "postgres" in item.keywords and not have_postgres:
            if require_postgres:
                raise pytest.UsageError(
                    f"{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_DSN_ENV} is not a postgresql:// URL: "
                    f"the PostgreSQL tests ({item.nodeid}, ...) must run"
                )
            item.add_marker(
                pytest.mark.skip(reason=f"set {POSTGRES_DSN_ENV}=postgresql://... to run the PostgreSQL tests")
            )
        if "rl" in item.keywords and not have_rl:
            item.add_marker(pytest.mark.skip(reason="install the 'rl' extra (pip install -e '.[rl]') to run"))


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The PostgreSQL server URL from the environment (tests using it carry ``postgres``)."""
    dsn = _postgres_dsn()
    if dsn is None:
        pytest.fail(f"{POSTGRES_DSN_ENV} is not set to a postgresql:// URL")
    return dsn


# OMS databases. Tests take `oms_database_url` (or `oms_store`) and run once per backend;
# the PostgreSQL run carries the `postgres` marker.
OMS_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def oms_postgres_url(postgres_dsn: str) -> Iterator[str]:
    """A fresh database on the PostgreSQL server for this test session, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"ai_trading_test_{uuid.uuid4().hex[:12]}"
    server = make_url(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
