"""A database that cannot be reached is a clear error naming it, from the store, the
migrations and the command line alike."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ai_trading.cli import main
from ai_trading.config import OmsConfig
from ai_trading.errors import DatabaseUnavailable
from ai_trading.oms import migrate
from ai_trading.oms.intent_store import IntentStore


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
