"""Command-line conventions: --version, options after the subcommand that uses them, and
-v showing our events without library noise."""

from __future__ import annotations

import logging
from importlib.metadata import version
from pathlib import Path

import pytest

from ai_trading.cli import main

PLACEMENTS = [
    ["db", "--dsn", "{dsn}", "current"],
    ["db", "current", "--dsn", "{dsn}"],
    ["db", "current", "--json", "--dsn", "{dsn}"],
    ["oms", "--json", "status", "--dsn", "{dsn}"],
    ["oms", "status", "--json", "--dsn", "{dsn}"],
    ["oms", "status", "--dsn", "{dsn}"],
]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"ai-trading {version('ai-trading')}"


@pytest.mark.parametrize("argv", PLACEMENTS, ids=[" ".join(a) for a in PLACEMENTS])
def test_options_work_where_users_type_them(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    dsn = f"sqlite:///{tmp_path / 'oms.sqlite'}"
    assert main(["db", "upgrade", "--dsn", dsn]) == 0
    capsys.readouterr()
    assert main([part.format(dsn=dsn) for part in argv]) == 0
    out = capsys.readouterr().out
    assert out.lstrip().startswith("{") == ("--json" in argv)


def test_verbose_shows_our_events_with_their_fields_and_not_library_debug(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "spy.csv").write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,1.5,100\n")
    try:
        assert main(["-v", "data", "ingest", str(tmp_path / "spy.csv"), "--db", str(tmp_path / "x.duckdb")]) == 0
        logging.getLogger("numba").debug("LIBRARY_NOISE")
        logging.getLogger("ai_trading.test").debug("OUR_DEBUG_NOT_AT_V")
    finally:
        logging.getLogger().handlers.clear()
        logging.getLogger("ai_trading").setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert "DATA_WRITTEN" in err and "rows=1" in err
    assert "LIBRARY_NOISE" not in err and "OUR_DEBUG_NOT_AT_V" not in err
