"""Where the Alembic environment lives and what revision a database is at.

The one place that finds ``alembic.ini`` and ``migrations/`` (at the repository root, next
to the editable-installed package); the CLI, the store's start-up check and the tests all
go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from ai_trading.config import OmsConfig
from ai_trading.errors import ConfigError, MigrationError, StoreNotMigrated
from ai_trading.oms.engine import connect, create_oms_engine, transaction

logger = logging.getLogger(__name__)

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = REPOSITORY_ROOT / "alembic.ini"
MIGRATIONS_DIR = REPOSITORY_ROOT / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's config for our environment; ``connection`` is handed to ``migrations/env.py``."""
    if not ALEMBIC_INI.is_file() or not MIGRATIONS_DIR.is_dir():
        raise ConfigError(
            f"Alembic environment not found at {REPOSITORY_ROOT} (alembic.ini, migrations/): "
            "install ai-trading from its repository with `pip install -e .`"
        )
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The single head revision of ``migrations/``."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise ConfigError(f"{MIGRATIONS_DIR} holds no revisions")
    return head


def revisions() -> list[tuple[str, str]]:
    """``(revision, message)`` of every revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [(rev.revision, rev.doc) for rev in reversed(list(script.walk_revisions()))]


def database_revision(config: OmsConfig) -> str | None:
    """The revision the database of ``config`` is at (None for an empty database)."""
    engine = create_oms_engine(config)
    try:
        with connect(engine) as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None for an empty database)."""
    return MigrationContext.configure(connection).get_current_revision()


def require_head(engine: Engine) -> None:
    """Raise :class:`StoreNotMigrated` unless the database is at the head revision
    (:class:`DatabaseUnavailable` when it cannot be reached)."""
    with connect(engine) as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        raise StoreNotMigrated(
            f"database at revision {current or 'base (empty)'}, head is {head}: run `ai-trading db upgrade`"
        )


def upgrade(config: OmsConfig, revision: str = "head") -> None:
    """Migrate the database of ``config`` up to ``revision``."""
    _run(config, revision, command.upgrade)


def downgrade(config: OmsConfig, revision: str) -> None:
    """Migrate the database of ``config`` down to ``revision`` (``base`` drops every OMS table)."""
    _run(config, revision, command.downgrade)


def _run(config: OmsConfig, revision: str, step: Callable[[Config, str], None]) -> None:
    engine = create_oms_engine(config)
    try:
        with connect(engine) as connection, transaction(connection):
            before = current_revision(connection)
            try:
                step(alembic_config(connection), revision)
            except CommandError as exc:
                raise MigrationError(f"cannot migrate to {revision!r}: {exc} (see `ai-trading db history`)") from exc
            after = current_revision(connection)
    finally:
        engine.dispose()
    logger.info("OMS_DB_MIGRATED", extra={"from_revision": before, "to_revision": after})
