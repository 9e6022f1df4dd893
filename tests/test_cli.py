"""Command-line conventions: --version, options after the subcommand that uses them, and
-v showing our events without library noise."""

from __future__ import annotations

import subprocess
import sys
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


def test_verbose_shows_our_events_with_their_fields_and_not_library_noise(tmp_path: Path) -> None:
    (tmp_path / "spy.csv").write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,1,1.5,100\n")
    command = [sys.executable, "-m", "ai_trading.cli", "-vv", "data", "ingest", str(tmp_path / "spy.csv"), "--db", str(tmp_path / "x.duckdb")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert "ai_trading.data.store DATA_WRITTEN" in done.stderr and "rows=1" in done.stderr
    libraries = [line for line in done.stderr.splitlines() if " DEBUG " in line and " ai_trading." not in line]
    assert libraries == []
    quiet = subprocess.run(command[:3] + command[4:], capture_output=True, text=True, timeout=120, check=True)
    assert quiet.stderr == ""
