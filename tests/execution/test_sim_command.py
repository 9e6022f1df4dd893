"""``ai-trading sim`` end to end on the built-in data set, and fill-based equity."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ai_trading.cli import main
from ai_trading.config import ExecutionConfig
from ai_trading.data import generate_panel
from ai_trading.execution.demo import demo_idle_reason, demo_orders
from ai_trading.execution.pnl import charged_spread_bps, cost_breakdown, equity_from_fills
from ai_trading.execution.sim_run import run_demo
from ai_trading.execution.simulator import ExecutionSimulator
from ai_trading.types import FillBatch, MarketPanel

COST_PARTS = ("cost_spread", "cost_slippage_impact", "cost_fees")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sim") / "market.duckdb"
    assert main(["data", "generate", "--db", str(path)]) == 0
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["sim", "--json", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "the JSON summary must be the only thing on stdout"
    return json.loads(out)


def test_json_summary_is_complete_and_deterministic(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, "--db", str(store_path))
    second = run_json(capsys, "--db", str(store_path))
    timing = {"sim_seconds", "bar_symbols_per_s"}
    assert {k: v for k, v in first.items() if k not in timing} == {k: v for k, v in second.items() if k not in timing}
    assert first["orders"] > 0 and 0 < first["fill_rate"] <= 1 and first["note"] is None
    assert first["gross_pnl"] - first["net_pnl"] == pytest.approx(first["cost"])
    assert first["cost"] > 0 and all(first[part] > 0 for part in COST_PARTS)
    assert first["frequency"] == "1d" and first["periods_per_year"] == 252.0
    other_seed = run_json(capsys, "--db", str(store_path), "--seed", "99")
    assert other_seed["net_pnl"] != first["net_pnl"]


def test_symbols_and_dates_select_the_panel(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_json(capsys, "--db", str(store_path), "--symbols", "SYN00,SYN03,SYN06,SYN09,SYN12", "--start", "2018-01-01", "--end", "2019-01-01")
    assert summary["symbols"] == 5
    assert summary["start"].startswith("2018-01") and summary["end"].startswith("2018-12")


def test_unknown_symbol_is_a_clear_error(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--db", str(store_path), "--symbols", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err


def test_an_empty_date_range_is_a_clear_error(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--db", str(store_path), "--start", "2100-01-01"]) == 2
    assert "holds no bars" in capsys.readouterr().err


def test_start_after_end_says_so(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20, finding 6: ``--start`` after ``--end`` answered "no bars"."""
    assert main(["sim", "--db", str(store_path), "--start", "2020-01-01", "--end", "2019-01-01"]) == 2
    err = capsys.readouterr().err
    assert "start=2020-01-01 end=2019-01-01" in err and "after" in err and "no bars" not in err


def test_a_run_without_orders_reads_n_a_for_its_rates(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One bar gives the strategy nothing to trade: rates over no orders are undefined."""
    assert main(["sim", "--db", str(store_path), "--symbols", "SYN00", "--start", "2024-08-29"]) == 0
    lines = labelled_lines(capsys.readouterr().out)
    assert lines["orders"] == "0 orders, 0 fill events"
    assert lines["fill rate"] == "n/a of 0 shares ordered"
    assert lines["cost"] == "0 = n/a bps of traded notional, fill prices against each fill's reference mid, plus fees:"
    assert lines["P&L"] == "gross 0 (fills at their mids, no fees), net 0 (+0.0% of the 10,000,000 book); net = gross - cost"
    assert "nan" not in "".join(lines.values()) and "why" not in lines
    assert lines["note"] == "no orders: the demo strategy needs more than 21 bars (a 20-bar lookback, then a bar to trade in); the selection has 1"
    summary = run_json(capsys, "--db", str(store_path), "--symbols", "SYN00", "--start", "2024-08-29")
    assert summary["fill_rate"] is None and summary["cost_bps"] is None and summary["explanation"] is None
    assert summary["note"] == lines["note"].removeprefix("no orders: ")


def test_symbols_that_never_share_a_bar_are_explained(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A daily and a 1-minute symbol never have a bar at the same time: the store refuses
    to mix them in one panel, and a panel whose symbols never trade at the same bar gets a
    note instead of only zeros."""
    db = str(tmp_path / "mixed.duckdb")
    assert main(["data", "generate", "--db", db, "--frequency", "daily", "--symbols", "2", "--bars", "100"]) == 0
    assert main(["data", "generate", "--db", db, "--frequency", "1min", "--symbols", "2", "--bars", "100"]) == 0
    capsys.readouterr()
    assert main(["sim", "--db", db, "--symbols", "SYN00,SYNM00"]) == 2
    assert "one frequency" in capsys.readouterr().err
    assert run_json(capsys, "--db", db, "--symbols", "SYNM00,SYNM01")["orders"] > 0  # one frequency trades
    panel = generate_panel(2, 100, seed=1)
    apart = panel.valid.copy()
    apart[np.arange(100) % 5 == 0, 1] = False  # symbol 1 has no bar at any rebalance bar
    summary = run_demo(dataclasses.replace(panel, valid=apart), ExecutionConfig(), 252.0).summary()
    assert summary["orders"] == 0
    assert "at most 1 of these 2 have one at a rebalance bar" in summary["note"]


def test_a_book_too_small_for_any_share_is_explained() -> None:
    n_bars, n_symbols = 60, 5
    close = np.linspace(100, 130, n_bars)[:, None] * np.linspace(1, 2, n_symbols)
    panel = MarketPanel(
        ts=np.arange(n_bars, dtype=np.int64) * 86_400_000_000_000, symbols=tuple(f"S{i}" for i in range(n_symbols)),
        open=close, high=close, low=close, close=close, volume=np.ones((n_bars, n_symbols)), valid=np.ones((n_bars, n_symbols), dtype=bool),
    )  # fmt: skip
    assert len(demo_orders(panel)) == 0  # 2% of one share a bar rounds to nothing
    assert demo_idle_reason(panel) == "every position the demo strategy wanted rounds to 0 shares under its cap of 2% of trailing volume"


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_a_seed_outside_uint64_is_a_clear_error(store_path: Path, capsys: pytest.CaptureFixture[str], seed: str) -> None:
    assert main(["sim", "--db", str(store_path), "--seed", seed]) == 2
    assert "execution.seed must be in [0, 2**64)" in capsys.readouterr().err


def test_out_writes_fills_orders_and_plot(store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_json(capsys, "--db", str(store_path), "--out", str(tmp_path))
    fills = pq.read_table(tmp_path / "fills.parquet")
    orders = pq.read_table(tmp_path / "orders.parquet")
    assert fills.num_rows == summary["fills"] and orders.num_rows == summary["orders"]
    assert {"order_id", "bar", "ts", "qty", "price", "fee", "symbol_name"} <= set(fills.column_names)
    assert fills.schema.field("ts").type == pa.timestamp("ns", tz="UTC")
    assert str(fills["ts"][0].as_py().date()) >= "2015-01-02"
    assert (tmp_path / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unwritable_out_directory_is_a_clear_error(store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert main(["sim", "--db", str(store_path), "--out", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ai-trading sim: error: ") and str(blocker / "out") in err and "Traceback" not in err
    assert blocker.read_text() == "not a directory"


@pytest.mark.slow
def test_second_start_does_not_recompile_kernels(store_path: Path) -> None:
    env = {**os.environ, "NUMBA_DEBUG_CACHE": "1"}
    command = [sys.executable, "-m", "ai_trading.cli", "sim", "--json", "--db", str(store_path)]
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    second = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    assert "data loaded" in second.stdout + second.stderr
    assert "data saved" not in second.stdout + second.stderr


def test_equity_from_fills_matches_a_bar_by_bar_ledger() -> None:
    close = np.array([[10.0, 20.0], [11.0, np.nan], [12.0, 22.0], [9.0, 25.0]])
    valid = ~np.isnan(close)
    panel = MarketPanel(ts=np.arange(4), symbols=("A", "B"), open=close, high=close, low=close, close=close, volume=np.ones_like(close), valid=valid)
    fills = FillBatch(
        order_id=[1, 2, 3], symbol=[0, 1, 0], bar=[1, 2, 3], ts=[1, 2, 3], side=[1, -1, -1], qty=[5.0, 2.0, 5.0],
        price=[11.1, 21.9, 8.9], fee=[1.0, 1.0, 1.0], mid=[11.0, 22.0, 9.0], participation=[0.1] * 3, sigma_bps=[1.0] * 3, spread_bps=[np.nan] * 3,
    )  # fmt: skip
    result = equity_from_fills(fills, panel, 1000.0)
    cash, position, expected = 1000.0, [0.0, 0.0], []
    marks = [10.0, 20.0]
    for t in range(4):
        for k in range(3):
            if fills.bar[k] == t:
                position[fills.symbol[k]] += fills.side[k] * fills.qty[k]
                cash -= fills.side[k] * fills.qty[k] * fills.price[k] + fills.fee[k]
        marks = [close[t, s] if valid[t, s] else marks[s] for s in range(2)]
        expected.append(cash + position[0] * marks[0] + position[1] * marks[1])
    np.testing.assert_allclose(result.net, expected)
    costs = (11.1 - 11.0) * 5 + 1 + (22.0 - 21.9) * 2 + 1 + (9.0 - 8.9) * 5 + 1
    assert result.gross_pnl - result.net_pnl == pytest.approx(costs)


def test_a_closed_stdout_stops_the_command_quietly(store_path: Path) -> None:
    """``ai-trading sim --json | head -c 10``: the reader is gone before the summary is
    written; the command exits with the SIGPIPE status and no traceback."""
    command = [sys.executable, "-m", "ai_trading.cli", "sim", "--json", "--db", str(store_path)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 128 + 13, err.decode()
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


def labelled_lines(text: str) -> dict[str, str]:
    return {line[:19].strip(): line[19:].strip() for line in text.splitlines()}


def test_the_summary_has_one_cost_total_whose_parts_add_up(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20, finding 5: the summary printed two unlabeled cost totals (``cost ...
    (4,988,299)`` and ``execution cost 5,009,226``) and a share-weighted slippage above a
    notional-weighted cost. Now one cost total is split into parts that add up to it, the
    shortfall against the decision price is the cost plus a stated price drift, and every
    bps figure is of traded notional."""
    summary = run_json(capsys, "--db", str(store_path))
    assert sum(summary[part] for part in COST_PARTS) == pytest.approx(summary["cost"], rel=1e-12)
    assert sum(summary[f"{part}_bps"] for part in COST_PARTS) == pytest.approx(summary["cost_bps"], rel=1e-12)
    assert summary["cost_bps"] == pytest.approx(summary["cost"] / summary["traded_notional"] * 1e4)
    assert summary["shortfall_vs_decision"] == pytest.approx(summary["cost"] + summary["price_drift"])
    assert "execution_cost" not in summary and "realized_cost" not in summary and "slippage_bps_arrival" not in summary
    assert main(["sim", "--db", str(store_path)]) == 0
    text = capsys.readouterr().out
    lines = labelled_lines(text)
    assert lines["cost"].startswith(f"{summary['cost']:,.0f} = {summary['cost_bps']:.2f} bps of traded notional")
    assert text.count(f"{summary['cost']:,.0f}") == 1, "one cost total, printed once"
    assert lines["spread"].startswith(f"{summary['cost_spread']:,.0f} (") and lines["fees"].startswith(f"{summary['cost_fees']:,.0f} (")
    assert "share-weighted" in lines["participation"] and "notional-weighted" in lines["shortfall"]
    assert lines["what"].startswith("the built-in demo") and "ai-trading sim --symbols" in lines["what"]


def test_a_result_decided_by_costs_is_explained(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default demo loses more to costs than it makes before them: a ``why`` line says
    so with the turnover and the cost, in the text and in the JSON."""
    summary = run_json(capsys, "--db", str(store_path))
    assert summary["cost"] > abs(summary["gross_pnl"])
    years = summary["bars"] / summary["periods_per_year"]
    assert summary["turnover_per_year"] == pytest.approx(summary["traded_notional"] / summary["book"] / years)
    assert f"traded {summary['turnover_per_year']:.1f}x a year at {summary['cost_bps']:.1f} bps" in summary["explanation"]
    assert summary["cost_share_of_gross"] == pytest.approx(summary["cost"] / abs(summary["gross_pnl"]))
    assert main(["sim", "--db", str(store_path)]) == 0
    assert labelled_lines(capsys.readouterr().out)["why"] == summary["explanation"]


def test_cost_parts_match_what_the_simulator_charged() -> None:
    """Without slippage, impact and noise every fill pays exactly half the spread beyond its
    mid: the spread part is all of the cost before fees, with quoted and modeled spreads."""
    panel = generate_panel(6, 200, seed=4)
    spread_only = ExecutionConfig(slippage_base_bps=0.0, slippage_vol_coef=0.0, impact_eta=0.0, slippage_noise_bps=0.0)
    for data in (panel, dataclasses.replace(panel, spread_bps=None)):
        simulator = ExecutionSimulator(spread_only)
        fills = simulator.simulate(demo_orders(data), data).fills
        assert len(fills) > 50
        costs = cost_breakdown(fills, charged_spread_bps(fills, spread_only, simulator.symbol_coefs(data), data.bar_seconds))
        assert costs.slippage_impact == pytest.approx(0.0, abs=1e-6 * costs.spread)
        paid = fills.side * (fills.price - fills.mid) * fills.qty
        assert costs.spread == pytest.approx(float(paid.sum()), rel=1e-9) and costs.fees == pytest.approx(float(fills.fee.sum()))
    default = run_demo(panel, ExecutionConfig(), 252.0)
    assert default.costs.slippage_impact > 0 and default.costs.total == pytest.approx(default.equity.gross_pnl - default.equity.net_pnl)
