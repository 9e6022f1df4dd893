"""``ai-trading data generate|ingest|info`` end to end against a temporary store."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_trading.cli import main
from ai_trading.commands.data import FREQUENCY_CHOICES
from ai_trading.data import FREQUENCIES, MarketDataStore

GOOD_CSV = "Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,1000\n2024-01-03,10.5,11,10,10.8,1200\n"
BAD_CSV = "Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,1000\n2024-01-03,10.5,10.6,10,10.8,1200\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["data", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_frequencies_are_the_generators() -> None:
    assert FREQUENCY_CHOICES == FREQUENCIES


def test_generate_ingest_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "bars.duckdb")
    code, out, _ = run(capsys, "generate", "--db", db, "--frequency", "1min", "--symbols", "3", "--bars", "400", "--seed", "4")
    assert code == 0 and "3 symbols" in out
    (tmp_path / "abc.csv").write_text(GOOD_CSV)
    code, out, _ = run(capsys, "ingest", str(tmp_path / "abc.csv"), "--symbol", "ABC", "--db", db)
    assert code == 0 and "2 new, 0 replaced" in out
    code, out, _ = run(capsys, "ingest", str(tmp_path / "abc.csv"), "--symbol", "ABC", "--db", db)
    assert code == 0 and "0 new, 2 replaced" in out
    code, out, _ = run(capsys, "info", "--db", db)
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(lines) == {"ABC", "SYNM00", "SYNM01", "SYNM02"}
    assert lines["ABC"][1] == "2" and lines["ABC"][-1] == "1d"
    assert lines["SYNM00"][1] == "400" and lines["SYNM00"][-1] == "1min"


def test_bad_file_fails_with_the_rule_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "bars.duckdb"
    (tmp_path / "good.csv").write_text(GOOD_CSV)
    (tmp_path / "bad.csv").write_text(BAD_CSV)
    code, out, err = run(capsys, "ingest", str(tmp_path / "good.csv"), str(tmp_path / "bad.csv"), "--symbol", "X", "--db", str(db))
    assert code == 2 and out == ""
    assert f"{tmp_path / 'bad.csv'}, row 2: high must be >= max(open, close)" in err
    with MarketDataStore(db, read_only=True) as store:
        assert store.row_count() == 0


def test_a_file_with_only_a_header_writes_nothing_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "header.csv").write_text(GOOD_CSV.splitlines()[0] + "\n")
    code, out, _ = run(capsys, "ingest", str(tmp_path / "header.csv"), "--symbol", "X", "--db", str(tmp_path / "bars.duckdb"))
    assert code == 0 and out.startswith("0 bars of no symbol from 1 file(s)") and "0 new, 0 replaced" in out


def test_info_fills_an_empty_store_with_the_builtin_set(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AI_TRADING_DATA_DB", str(tmp_path / "env.duckdb"))
    monkeypatch.setenv("AI_TRADING_DATA__SYNTHETIC_SYMBOLS", "4")
    code, out, _ = run(capsys, "info")
    assert code == 0 and out.startswith(f"{tmp_path / 'env.duckdb'}: ") and "4 symbols" in out


def test_nonpositive_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["data", "generate", "--db", str(tmp_path / "x.duckdb"), "--symbols", "0"])


def test_a_negative_seed_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "generate", "--db", str(tmp_path / "x.duckdb"), "--symbols", "2", "--bars", "5", "--seed", "-5")
    assert code == 2 and err == "ai-trading data: error: the generator's seed must be >= 0, got -5\n"


def test_more_bars_than_memory_holds_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bars = str(10**17)  # 800 PB of closes: beyond any machine's address space, so refused at once
    code, out, err = run(capsys, "generate", "--db", str(tmp_path / "x.duckdb"), "--symbols", "2", "--bars", bars)
    assert code == 2 and out == ""
    assert err.startswith("ai-trading data: error: Unable to allocate") and "Traceback" not in err
