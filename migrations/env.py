"""Alembic environment of the OMS database.

The database comes from the caller's connection (``config.attributes["connection"]``, as
``ai_trading.oms.migrate`` and pytest-alembic pass it) or else from the ai-trading
configuration (``AI_TRADING_OMS_DSN``). ``target_metadata`` is the head schema, for the
autogenerate comparison only: revisions never import it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ai_trading.config import load_config
from ai_trading.oms.engine import create_oms_engine, sqlalchemy_url
from ai_trading.oms.schema import metadata

target_metadata = metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    engine = create_oms_engine(load_config().oms)
    try:
        with engine.begin() as own_connection:
            run_migrations(own_connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=sqlalchemy_url(load_config().oms.dsn),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
