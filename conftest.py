"""Fixtures and the marker policy shared by ``tests/`` and ``benchmarks/``.

``postgres`` tests and benchmarks read ``AI_TRADING_OMS_DSN``; they skip when it is unset
and fail instead when ``AI_TRADING_REQUIRE_POSTGRES=1`` (as CI sets it). ``rl`` tests skip
only when the ``rl`` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator

import pytest

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


@pytest.fixture(scope="session")
def create_postgres_database(postgres_dsn: str) -> Iterator[Callable[[str], str]]:
    """A factory of fresh databases on the PostgreSQL server (``prefix`` + random suffix),
    each dropped at the end of the session; returns the new database's URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    created: list[str] = []

    def create(prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(postgres_dsn).set(database=name).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            for name in created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
