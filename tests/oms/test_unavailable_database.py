"""A database that cannot be reached, or is lost mid-session, is a clear error naming it,
from the store, the migrations and the command line alike."""

from __future__ import annotations

import socket
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from ai_trading.cli import main
from ai_trading.config import OmsConfig
from ai_trading.errors import DatabaseUnavailable
from ai_trading.oms import migrate
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import OrderIntent


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unopenable_sqlite_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = f"sqlite:///{tmp_path}"  # a directory, not a database file
    with pytest.raises(DatabaseUnavailable, match=f"sqlite:///{tmp_path} is unavailable: unable to open database file"):
        IntentStore.open(OmsConfig(dsn=dsn))
    with pytest.raises(DatabaseUnavailable):
        migrate.upgrade(OmsConfig(dsn=dsn))
    assert main(["db", "--dsn", dsn, "current"]) == 2
    err = capsys.readouterr().err
    assert "is unavailable" in err and "Traceback" not in err


def test_a_postgresql_server_that_refuses_connections(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    dsn = f"postgresql://trader:s3cret@127.0.0.1:{closed_port()}/oms"
    with pytest.raises(DatabaseUnavailable, match=r"postgresql\+psycopg://trader:\*\*\*@127\.0\.0\.1:\d+/oms is unavailable") as raised:
        IntentStore.open(OmsConfig(dsn=dsn))
    assert "s3cret" not in str(raised.value)
    with pytest.raises(DatabaseUnavailable):
        migrate.database_revision(OmsConfig(dsn=dsn))
    assert main(["db", "--dsn", dsn, "upgrade"]) == 2
    err = capsys.readouterr().err
    assert "Connection refused" in err and "s3cret" not in err


def intent(cid: str) -> OrderIntent:
    return OrderIntent.new(client_order_id=cid, strategy="s", symbol="AAPL", side="buy", qty=Decimal(1))


@pytest.mark.postgres
def test_a_connection_lost_mid_session(postgres_dsn: str, create_postgres_database: Callable[[str], str]) -> None:
    """The server ends the store's session and refuses it for a while (a restart or a
    failover): each call in that time is a DatabaseUnavailable, none writes anything, and
    the store works again, with its earlier writes, once the database is back."""
    import psycopg

    dsn = create_postgres_database("ai_trading_lost")
    name = dsn.rsplit("/", 1)[1]
    config = OmsConfig(dsn=dsn)
    migrate.upgrade(config)

    def admin(sql: str) -> None:
        with psycopg.connect(postgres_dsn, autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]

    with IntentStore.open(config) as store:
        store.create(intent("before"))
        admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        with pytest.raises(DatabaseUnavailable, match=f"lost the connection to OMS database .*/{name} during a transaction"):
            store.create(intent("lost"))
        with pytest.raises(DatabaseUnavailable, match=f"/{name} is unavailable: .*not currently accepting connections"):
            store.create(intent("refused"))
        admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        store.create(intent("after"))
        assert [i.client_order_id for i in store.list_intents()] == ["before", "after"]
