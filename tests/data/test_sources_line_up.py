"""Findings 1, 2 and 6 of the market-data issue, reproduced end to end: daily bars of the
same days from yfinance, Alpaca and Parquet files share every bar; one ingest command
cannot overwrite a symbol with another's prices; compressed files, the three-row yfinance
header, old stores and mixed frequencies each get a clear answer."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ai_trading.cli import main
from ai_trading.data import MarketDataStore, generate_panel
from ai_trading.errors import DataConflictError, DataStoreError, DataValidationError
from ai_trading.types import MarketPanel

NEW_YORK = ZoneInfo("America/New_York")
N_DAYS = 260
SYMBOLS = ("SPY", "QQQ", "IWM", "DIA")


@pytest.fixture(scope="module")
def prices() -> MarketPanel:
    """Four symbols' daily bars over a year that crosses both daylight-saving changes."""
    return generate_panel(len(SYMBOLS), N_DAYS, "daily", seed=3)


def _days(panel: MarketPanel) -> list[datetime]:
    return [datetime.fromtimestamp(int(ns) // 10**9, UTC) for ns in panel.ts]


def _rows(panel: MarketPanel, k: int) -> list[tuple[float, float, float, float, float]]:
    return [
        (float(panel.open[t, k]), float(panel.high[t, k]), float(panel.low[t, k]), float(panel.close[t, k]), float(panel.volume[t, k]))
        for t in range(panel.n_bars)
    ]


def write_yfinance(path: Path, panel: MarketPanel, k: int) -> Path:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for day, (o, h, lo, c, v) in zip(_days(panel), _rows(panel, k), strict=True):
        lines.append(f"{day:%Y-%m-%d},{o!r},{h!r},{lo!r},{c!r},{c * 0.97!r},{v!r}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_yfinance_multirow(path: Path, panel: MarketPanel, ks: list[int]) -> Path:
    """The layout yfinance >= 0.2.51 writes: Price / Ticker / Date header rows."""
    fields = ["Close", "High", "Low", "Open", "Volume"]
    header = ["Price"] + [f for f in fields for _ in ks]
    tickers = ["Ticker"] + [SYMBOLS[k] for _ in fields for k in ks]
    lines = [",".join(header), ",".join(tickers), "Date" + "," * (len(header) - 1)]
    for t, day in enumerate(_days(panel)):
        values = {k: dict(zip(["Open", "High", "Low", "Close", "Volume"], _rows(panel, k)[t], strict=True)) for k in ks}
        lines.append(f"{day:%Y-%m-%d}," + ",".join(repr(values[k][f]) for f in fields for k in ks))
    path.write_text("\n".join(lines) + "\n")
    return path


def alpaca_stamp(day: datetime) -> str:
    """Alpaca's daily bar time: midnight New York, in UTC (05:00Z in winter, 04:00Z in summer)."""
    midnight = datetime.combine(day.date(), time(0), NEW_YORK)
    return midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_alpaca(path: Path, panel: MarketPanel, k: int) -> Path:
    lines = ["t,o,h,l,c,v,n,vw"]
    for day, (o, h, lo, c, v) in zip(_days(panel), _rows(panel, k), strict=True):
        lines.append(f"{alpaca_stamp(day)},{o!r},{h!r},{lo!r},{c!r},{v!r},100,{c!r}")
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_parquet_close_stamped(path: Path, panel: MarketPanel, k: int) -> Path:
    """Bars stamped at the session close (16:00 New York) with a zone."""
    closes = [datetime.combine(day.date(), time(16), NEW_YORK) for day in _days(panel)]
    rows = np.array(_rows(panel, k))
    table = pa.table(
        {"timestamp": pa.array(closes, pa.timestamp("us", tz="America/New_York")), "symbol": [SYMBOLS[k]] * len(closes),
         **{name: rows[:, j] for j, name in enumerate(["open", "high", "low", "close", "volume"])}}
    )  # fmt: skip
    pq.write_table(table, path, compression="zstd")
    return path


def test_four_sources_of_the_same_days_share_every_bar(tmp_path: Path, prices: MarketPanel) -> None:
    """Finding 1: yfinance (00:00Z) and Alpaca (04:00/05:00Z) daily bars never lined up."""
    files = [
        write_yfinance(tmp_path / "SPY.csv", prices, 0),
        write_alpaca(tmp_path / "qqq.csv.gz", prices, 1),
        write_parquet_close_stamped(tmp_path / "iwm-close.parquet", prices, 2),
        write_yfinance_multirow(tmp_path / "yf_download.csv", prices, [3]),
    ]
    with MarketDataStore(tmp_path / "bars.duckdb") as store:
        report = store.ingest(files)
        assert report.symbols == tuple(sorted(SYMBOLS)) and report.inserted == 4 * N_DAYS
        panel = store.panel(list(SYMBOLS))
    assert panel.frequency == "1d" and panel.n_bars == N_DAYS
    assert panel.valid.all(), "every symbol has a bar on every session"
    np.testing.assert_array_equal(panel.ts, prices.ts)
    np.testing.assert_array_equal(panel.close, prices.close)


def test_sim_and_walkforward_on_mixed_sources_are_sane(tmp_path: Path, prices: MarketPanel, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "bars.duckdb")
    files = [
        write_yfinance(tmp_path / "SPY.csv", prices, 0),
        write_alpaca(tmp_path / "QQQ.csv", prices, 1),
        write_yfinance(tmp_path / "IWM.csv", prices, 2),
        write_alpaca(tmp_path / "DIA.csv", prices, 3),
    ]
    assert main(["data", "ingest", *map(str, files), "--db", db]) == 0
    capsys.readouterr()
    assert main(["sim", "--db", db, "--symbols", ",".join(SYMBOLS), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["orders"] > 0 and summary["fill_rate"] > 0.9
    assert abs(summary["net_pnl"]) < 0.5 * summary["book"], "a four-symbol demo year cannot gain or lose half its book"
    assert main(["walkforward", "--db", db, "--symbols", ",".join(SYMBOLS), "--folds", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["folds"]) == 2


def test_one_ingest_cannot_overwrite_a_symbol_with_another(tmp_path: Path, prices: MarketPanel, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 2: `data ingest SPY.csv QQQ.csv --symbol SPY` replaced SPY with QQQ's prices."""
    db = tmp_path / "bars.duckdb"
    spy = write_yfinance(tmp_path / "SPY.csv", prices, 0)
    qqq = write_yfinance(tmp_path / "QQQ.csv", prices, 1)
    assert main(["data", "ingest", str(spy), "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["data", "ingest", str(spy), str(qqq), "--symbol", "SPY", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert f"{N_DAYS} bars come from more than one file" in err and str(spy) in err and str(qqq) in err
    with MarketDataStore(db, read_only=True) as store:
        np.testing.assert_array_equal(store.panel(["SPY"]).close[:, 0], prices.close[:, 0])
    assert main(["data", "ingest", str(qqq), "--symbol", "SPY", "--db", str(db)]) == 2
    assert "already stored with other values" in capsys.readouterr().err
    assert main(["data", "ingest", str(spy), str(qqq), "--db", str(db)]) == 0  # names from the files
    assert f"{N_DAYS} new, {N_DAYS} already stored, 0 replaced" in capsys.readouterr().out


def test_yfinance_download_of_several_tickers(tmp_path: Path, prices: MarketPanel) -> None:
    path = write_yfinance_multirow(tmp_path / "download.csv", prices, [0, 1, 2])
    with MarketDataStore(tmp_path / "bars.duckdb") as store:
        assert store.ingest(path).symbols == ("IWM", "QQQ", "SPY")
        panel = store.panel(["SPY", "QQQ", "IWM"])
    np.testing.assert_array_equal(panel.volume, prices.volume[:, :3])


def test_mixed_frequencies_are_refused_unless_resampled(tmp_path: Path) -> None:
    with MarketDataStore(tmp_path / "bars.duckdb") as store:
        store.generate("daily", 1, 30, seed=1)
        store.generate("1min", 2, 3 * 390, seed=1)
        with pytest.raises(DataValidationError, match="one frequency") as caught:
            store.panel(["SYN00", "SYNM00"])
        assert "--resample" in str(caught.value)
        minutes = store.panel(["SYNM00", "SYNM01"])
        daily = store.panel(["SYNM00", "SYNM01"], frequency="1d", resample=True)
    assert daily.frequency == "1d" and daily.n_bars == 3
    for day in range(3):  # reference: aggregate each session's minutes by hand
        rows = slice(day * 390, (day + 1) * 390)
        for k in range(2):
            valid = minutes.valid[rows, k]
            assert daily.open[day, k] == minutes.open[rows, k][valid][0]
            assert daily.close[day, k] == minutes.close[rows, k][valid][-1]
            assert daily.high[day, k] == np.nanmax(minutes.high[rows, k])
            assert daily.low[day, k] == np.nanmin(minutes.low[rows, k])
            assert daily.volume[day, k] == pytest.approx(np.nansum(minutes.volume[rows, k]), rel=1e-12)


def test_start_after_end_says_so(tmp_path: Path) -> None:
    with MarketDataStore(tmp_path / "bars.duckdb") as store:
        store.generate("daily", 1, 30, seed=1)
        with pytest.raises(DataValidationError, match="start must not be after end"):
            store.panel(["SYN00"], "2016-01-01", "2015-01-01")


def _old_store(path: Path) -> None:
    """A store as versions before the bar-time convention wrote it."""
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE bars (symbol VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, open DOUBLE NOT NULL, high DOUBLE NOT NULL, "
        "low DOUBLE NOT NULL, close DOUBLE NOT NULL, volume DOUBLE NOT NULL, spread_bps DOUBLE, PRIMARY KEY (symbol, ts))"
    )
    rows = [("SPY", f"2024-0{m}-0{d} 00:00:00+00", 1.0) for m, d in ((1, 2), (1, 3), (7, 1), (7, 2))]
    rows += [("QQQ", f"2024-0{m}-0{d} 0{h}:00:00+00", 2.0) for m, d, h in ((1, 2, 5), (1, 3, 5), (7, 1, 4), (7, 2, 4))]
    rows += [("MIN", f"2024-01-02 14:3{k}:00+00", 3.0) for k in range(4)]
    con.executemany("INSERT INTO bars VALUES (?, ?::TIMESTAMPTZ, ?, ?, ?, ?, 100, NULL)", [(s, t, p, p, p, p) for s, t, p in rows])
    con.close()


def test_an_old_store_is_refused_then_migrated_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.duckdb"
    _old_store(path)
    with pytest.raises(DataStoreError, match=f"ai-trading data migrate --db {path}"):
        MarketDataStore(path, read_only=True)
    assert main(["sim", "--db", str(path)]) == 2
    assert "data migrate" in capsys.readouterr().err
    assert main(["data", "migrate", "--db", str(path)]) == 0
    assert "3 symbols (2 daily), 4 daily bars re-keyed" in capsys.readouterr().out
    assert main(["data", "migrate", "--db", str(path)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    with MarketDataStore(path, read_only=True) as store:
        panel = store.panel(["SPY", "QQQ"])
        assert panel.valid.all() and panel.n_bars == 4
        assert store.frequencies() == {"MIN": ("1min",), "QQQ": ("1d",), "SPY": ("1d",)}


def test_an_empty_old_store_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_store(path)
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM bars")
    con.close()
    assert main(["data", "migrate", "--db", str(path)]) == 0
    with MarketDataStore(path) as store:
        assert store.row_count() == 0 and store.layout_version() == 2


def test_a_migration_that_would_merge_bars_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _old_store(path)
    con = duckdb.connect(str(path))
    for day in range(10, 20):  # QQQ stays daily by its spacing ...
        con.execute(f"INSERT INTO bars VALUES ('QQQ', '2024-01-{day} 05:00:00+00', 1, 1, 1, 1, 1, NULL)")
    con.execute("INSERT INTO bars VALUES ('QQQ', '2024-01-10 23:00:00+00', 1, 1, 1, 1, 1, NULL)")  # ... with two bars on 10 Jan
    before = con.execute("SELECT * FROM bars ORDER BY symbol, ts").fetchall()
    con.close()
    assert main(["data", "migrate", "--db", str(path)]) == 2
    con = duckdb.connect(str(path))
    assert con.execute("SELECT * FROM bars ORDER BY symbol, ts").fetchall() == before
    con.close()
    with pytest.raises(DataConflictError, match="2 bars of QQQ fall on the session of 2024-01-10"):
        from ai_trading.data.layout_migration import migrate_layout

        migrate_layout(path, "America/New_York")
