"""The SQLAlchemy engine of the OMS database, configured the same way for every caller.

PostgreSQL goes through psycopg 3 (``postgresql+psycopg://``; plain ``postgresql://`` and
``postgres://`` DSNs are mapped to it). SQLite gets what a shared, durable file needs:
WAL (readers never block the writer), ``synchronous=FULL`` (a commit survives power
loss), foreign keys, a busy timeout so several processes can share the file, and
``BEGIN IMMEDIATE`` so a transaction takes the write lock up front instead of failing
when it upgrades a read lock another process holds.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from ai_trading.config import OmsConfig
from ai_trading.errors import ConfigError, DatabaseUnavailable, MissingDependencyError

POSTGRES_SCHEMES = ("postgresql", "postgres")


def sqlalchemy_url(dsn: str) -> URL:
    """The SQLAlchemy URL of ``dsn``; libpq-style PostgreSQL URLs get the psycopg 3 driver."""
    try:
        url = make_url(dsn)
    except ArgumentError as exc:
        raise ConfigError(f"OMS dsn {dsn!r} is not a database URL (postgresql://... or sqlite:///...)") from exc
    if url.drivername in POSTGRES_SCHEMES:
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise ConfigError(f"OMS dsn {url.render_as_string(hide_password=True)!r}: only PostgreSQL and SQLite are supported")
    return url


def create_oms_engine(config: OmsConfig) -> Engine:
    """An engine for ``config.dsn``; raises :class:`ConfigError` for an unusable DSN."""
    url = sqlalchemy_url(config.dsn)
    if url.get_backend_name() == "postgresql":
        if importlib.util.find_spec("psycopg") is None:
            raise MissingDependencyError("psycopg", "postgres")
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    _configure_sqlite(engine, busy_timeout_ms=int(config.sqlite_busy_timeout_s * 1000))
    return engine


def connect(engine: Engine) -> Connection:
    """A new connection of ``engine``; a database that cannot be reached (server down,
    login refused, unreadable file) raises :class:`DatabaseUnavailable` naming it."""
    try:
        return engine.connect()
    except OperationalError as exc:
        raise DatabaseUnavailable(f"OMS database {_name(engine)} is unavailable: {str(exc.orig).strip()}") from exc


@contextmanager
def transaction(connection: Connection) -> Iterator[Connection]:
    """``connection.begin()``, committed unless an error escapes. Losing the connection
    inside it (the server restarted, or ended the session) raises
    :class:`DatabaseUnavailable`: SQLAlchemy has invalidated the connection, and its next
    use connects again. Other database errors pass through unchanged."""
    try:
        with connection.begin():
            yield connection
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        raise DatabaseUnavailable(
            f"lost the connection to OMS database {_name(connection.engine)} during a transaction: "
            f"{str(exc.orig).strip()}; the next call connects again"
        ) from exc


def _name(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (the driver would BEGIN lazily, DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE")
