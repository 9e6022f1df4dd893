"""``ai-trading data generate|ingest|info`` end to end against a temporary store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_trading.cli import main
from ai_trading.commands.data import FREQUENCY_CHOICES
from ai_trading.data import FREQUENCIES, MarketDataStore

GOOD_CSV = "Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,1000\n2024-01-03,10.5,11,10,10.8,1200\n"
BAD_CSV = "Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,1000\n2024-01-03,10.5,10.6,10,10.8,1200\n"
EMPTY_FILES = [
    ("zero bytes", "", "the file is empty"),
    ("header only", GOOD_CSV.splitlines()[0] + "\n", "the file has a header but no bars"),
]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


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
    assert code == 0 and "2 new, 0 already stored, 0 replaced" in out
    code, out, _ = run(capsys, "ingest", str(tmp_path / "abc.csv"), "--symbol", "ABC", "--db", db)
    assert code == 0 and "0 new, 2 already stored, 0 replaced" in out
    code, out, _ = run(capsys, "info", "--db", db)
    assert code == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert set(lines) == {"ABC", "SYNM00", "SYNM01", "SYNM02"}
    assert lines["ABC"][1:3] == ["1d", "2"] and lines["ABC"][-1] == "1d"
    assert lines["SYNM00"][1:3] == ["1min", "400"] and lines["SYNM00"][-1] == "1min"
    code, out, _ = run(capsys, "info", "--db", db, "--json")
    series = {row["symbol"]: row for row in json.loads(out)["series"]}
    assert code == 0 and series["ABC"]["frequency"] == "1d" and series["SYNM01"]["rows"] == 400


def test_bad_file_fails_with_the_rule_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "bars.duckdb"
    (tmp_path / "good.csv").write_text(GOOD_CSV)
    (tmp_path / "bad.csv").write_text(BAD_CSV)
    code, out, err = run(capsys, "ingest", str(tmp_path / "good.csv"), str(tmp_path / "bad.csv"), "--symbol", "X", "--db", str(db))
    assert code == 2 and out == ""
    assert f"{tmp_path / 'bad.csv'}, row 2: high must be >= max(open, close)" in err
    with MarketDataStore(db, read_only=True) as store:
        assert store.row_count() == 0


@pytest.mark.parametrize(("case", "text", "says"), EMPTY_FILES, ids=[e[0] for e in EMPTY_FILES])
def test_an_empty_file_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, text: str, says: str) -> None:
    """Finding 6: a header-only CSV used to 'succeed' with '0 bars of no symbol'."""
    (tmp_path / "empty.csv").write_text(text)
    db = tmp_path / "bars.duckdb"
    code, out, err = run(capsys, "ingest", str(tmp_path / "empty.csv"), "--symbol", "X", "--db", str(db))
    assert code == 2 and out == "" and str(tmp_path / "empty.csv") in err and says in err
    with MarketDataStore(db, read_only=True) as store:
        assert store.row_count() == 0


def test_info_is_read_only_and_names_a_missing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 6: `data info` on an empty or missing store used to fill it with the built-in set."""
    monkeypatch.setenv("AI_TRADING_DATA_DB", str(tmp_path / "env.duckdb"))
    code, out, err = run(capsys, "info")
    assert code == 2 and out == "" and str(tmp_path / "env.duckdb") in err and "data generate" in err
    assert not (tmp_path / "env.duckdb").exists()
    MarketDataStore(tmp_path / "env.duckdb").close()
    code, out, _ = run(capsys, "info")
    assert code == 0 and "0 bars, 0 symbols" in out


def test_a_mistyped_db_path_is_an_error_not_a_new_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 6: `sim --db /some/mistyped/path.duckdb` created directories and a 7 MB store."""
    missing = tmp_path / "mistyped" / "path.duckdb"
    for command in (["sim", "--db", str(missing)], ["walkforward", "--db", str(missing)]):
        code, out, err = run_cli(capsys, *command)
        assert code == 2 and str(missing) in err and "data generate" in err and "data ingest" in err
    assert not missing.parent.exists()


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
