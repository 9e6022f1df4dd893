"""Alembic revisions on SQLite and PostgreSQL: one head, stairway, schema equals metadata."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String, inspect

from ai_trading.cli import main
from ai_trading.config import OmsConfig
from ai_trading.errors import MigrationError, StoreNotMigrated
from ai_trading.oms import migrate
from ai_trading.oms.engine import create_oms_engine
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.schema import OMS_TABLES, metadata

# The tables each revision adds, oldest first: the expected state after every step.
TABLES_BY_REVISION = [
    ("0001", {"intents", "intent_events"}),
    ("0002", {"fills", "foreign_orders"}),
    ("0003", {"trading_state", "trading_state_audit", "rebalances", "risk_denials"}),
    ("0004", {"alert_notifications", "alert_silences"}),
    ("0005", {"adopted_positions", "adopted_positions_audit"}),
    ("0006", {"flatten_audit"}),
    ("0007", {"fill_positions"}),
]
OMS_TABLE_NAMES = {table.name for table in OMS_TABLES}


@pytest.fixture
def config(oms_database_url: str) -> OmsConfig:
    """Config of a database at base (no OMS table, no revision)."""
    config = OmsConfig(dsn=oms_database_url)
    migrate.downgrade(config, "base")
    return config


@pytest.fixture
def engine(config: OmsConfig) -> Iterator[Engine]:
    engine = create_oms_engine(config)
    yield engine
    engine.dispose()


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _tables_up_to(index: int) -> set[str]:
    return set().union(*(tables for _, tables in TABLES_BY_REVISION[: index + 1]))


def test_one_head_and_linear_history() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [TABLES_BY_REVISION[-1][0]]
    assert [rev for rev, _ in migrate.revisions()] == [rev for rev, _ in TABLES_BY_REVISION]
    assert _tables_up_to(len(TABLES_BY_REVISION) - 1) == OMS_TABLE_NAMES


def test_revisions_are_frozen_snapshots() -> None:
    for path in sorted((migrate.MIGRATIONS_DIR / "versions").glob("*.py")):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+ai_trading", text, re.MULTILINE), path
        assert "def downgrade()" in text and "def upgrade()" in text, path


def test_base_to_head(config: OmsConfig, engine: Engine) -> None:
    assert _tables(engine) == set()
    migrate.upgrade(config)
    assert _tables(engine) == OMS_TABLE_NAMES
    assert migrate.database_revision(config) == migrate.head_revision()
    IntentStore(engine)  # accepted at head


def test_stairway(config: OmsConfig, engine: Engine) -> None:
    previous = None
    for index, (revision, _) in enumerate(TABLES_BY_REVISION):
        migrate.upgrade(config, revision)
        assert (migrate.database_revision(config), _tables(engine)) == (revision, _tables_up_to(index))
        migrate.downgrade(config, "-1")
        assert (migrate.database_revision(config), _tables(engine)) == (previous, _tables_up_to(index - 1))
        migrate.upgrade(config, revision)
        assert _tables(engine) == _tables_up_to(index)
        previous = revision


def test_migrated_schema_equals_metadata(config: OmsConfig, engine: Engine) -> None:
    migrate.upgrade(config)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
        # The comparison does see differences: a metadata with one more column is not equal.
        changed = MetaData(naming_convention=metadata.naming_convention)
        for table in metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["fills"].append_column(Column("venue", String(16), nullable=True))
        diff = compare_metadata(context, changed)
    assert [(step[0], step[3].name) for step in diff] == [("add_column", "venue")]


def test_downgrade_to_base_leaves_no_oms_table(config: OmsConfig, engine: Engine) -> None:
    migrate.upgrade(config)
    migrate.downgrade(config, "base")
    assert _tables(engine) == set()
    assert migrate.database_revision(config) is None


def test_store_refuses_an_unmigrated_database(config: OmsConfig, engine: Engine) -> None:
    head = migrate.head_revision()
    with pytest.raises(StoreNotMigrated, match=rf"database at revision base \(empty\), head is {head}: run `ai-trading db upgrade`"):
        IntentStore.open(config)
    migrate.upgrade(config, "0001")
    with pytest.raises(StoreNotMigrated, match=f"database at revision 0001, head is {head}: run `ai-trading db upgrade`"):
        IntentStore(engine)


def test_unknown_revision_is_a_clear_error(config: OmsConfig) -> None:
    with pytest.raises(MigrationError, match="'0099'.*ai-trading db history"):
        migrate.upgrade(config, "0099")


def test_cli(config: OmsConfig, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = ["db", "--dsn", config.dsn]
    assert main([*dsn, "current"]) == 0
    assert f"base (empty) (head is {migrate.head_revision()}" in capsys.readouterr().out
    assert main([*dsn, "upgrade", "0001"]) == 0
    assert "database at revision 0001" in capsys.readouterr().out
    assert main([*dsn, "history"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("(current)")
    assert main([*dsn, "upgrade"]) == 0 and main([*dsn, "current"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"{migrate.head_revision()} (up to date)"
    assert main([*dsn, "downgrade", "base"]) == 0
    assert "base (empty)" in capsys.readouterr().out
    assert main([*dsn, "downgrade", "0099"]) == 2
    assert "ai-trading db history" in capsys.readouterr().err


def test_cli_reads_the_database_from_the_config_file(
    config: OmsConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AI_TRADING_OMS_DSN", raising=False)  # the environment would win over the file
    path = tmp_path / "config.toml"
    path.write_text(f"[oms]\ndsn = {config.dsn!r}\n")
    assert main(["db", "upgrade", "--config", str(path)]) == 0
    assert migrate.database_revision(config) == migrate.head_revision()
    assert main(["db", "current", "--config", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("(up to date)")


def test_alembic_files_are_found_from_the_repository_root() -> None:
    assert migrate.ALEMBIC_INI == Path(__file__).resolve().parents[2] / "alembic.ini"
    assert migrate.MIGRATIONS_DIR.is_dir()


def test_0003_round_trip_keeps_intents_and_drops_its_index(config: OmsConfig, engine: Engine) -> None:
    """0003 only adds: an intent written at 0002 survives upgrade, downgrade and upgrade."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from ai_trading.oms.schema import intents

    migrate.upgrade(config, "0002")
    now = datetime(2026, 12, 2, tzinfo=UTC)
    row = dict(
        client_order_id="keep-me", strategy="s", symbol="AAA", side="buy", qty=Decimal(5), order_type="market",
        limit_price=None, time_in_force="day", state="CREATED", filled_qty=Decimal(0), filled_notional=Decimal(0),
        fees=Decimal(0),
        broker_order_id=None, version=1, attempts=0, last_error=None, created_at=now, updated_at=now,
    )
    with engine.begin() as connection:
        connection.execute(intents.insert(), row)
    for step in (lambda: migrate.upgrade(config, "0003"), lambda: migrate.downgrade(config, "0002"), lambda: migrate.upgrade(config)):
        step()
        with engine.connect() as connection:
            assert [r.client_order_id for r in connection.execute(intents.select())] == ["keep-me"]
    with engine.connect() as connection:
        assert "ix_intents_created_at" in {index["name"] for index in inspect(connection).get_indexes("intents")}
    migrate.downgrade(config, "0002")
    with engine.connect() as connection:
        assert "ix_intents_created_at" not in {index["name"] for index in inspect(connection).get_indexes("intents")}
