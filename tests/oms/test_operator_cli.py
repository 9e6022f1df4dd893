"""The operator's view: `oms orders`, `oms positions`, `oms cancel`, `oms cancel-all`,
`oms adopt-positions` and `risk state`, text and --json, on a populated OMS (SQLite, and
PostgreSQL under the postgres marker). Read commands leave the database as it was;
cancels pass while HALTED."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ai_trading.cli import main
from ai_trading.commands.oms import create_broker
from ai_trading.config import AppConfig, OmsConfig, load_config
from ai_trading.data.store import MarketDataStore, open_store
from ai_trading.oms.broker import Broker
from ai_trading.oms.idempotency import build_client_order_id, signal_hash
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.manager import OrderManager
from ai_trading.oms.models import IntentState, OrderIntent
from ai_trading.oms.schema import metadata
from tests.brokers.alpaca_server import KEY_ID, SECRET_KEY
from tests.oms.oms_harness import NO_GRACE
from tests.oms.test_adoption import HOLDINGS, funded_alpaca

N_SYMBOLS = 3
N_BARS = 120
MAX_POLLS = 40
READ_COMMANDS = [
    ["oms", "status"],
    ["oms", "orders"],
    ["oms", "orders", "--open"],
    ["oms", "positions"],
    ["risk", "state"],
]


@dataclass
class Desk:
    """A populated OMS: filled buys, acknowledged open orders and one never-sent intent."""

    config_file: Path
    dsn: str
    config: AppConfig
    store: IntentStore
    broker: Broker
    filled: list[str]
    open: list[str]

    def run(self, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
        # --dsn: AI_TRADING_OMS_DSN (set for the PostgreSQL run) would override the file's.
        code = main([*argv, "--config", str(self.config_file), "--dsn", self.dsn])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
        code, out, err = self.run(capsys, *argv, "--json")
        assert code == 0, err
        return json.loads(out)


def _intent(symbol: str, side: str, qty: int, tag: str) -> OrderIntent:
    cid = build_client_order_id("ops", symbol, side, "20240105", "1d", signal_hash({"tag": tag}), Decimal(qty), 1)
    return OrderIntent.new(client_order_id=cid, strategy="ops", symbol=symbol, side=side, qty=Decimal(qty))


def _write_config(path: Path, dsn: str, tmp_path: Path, broker: str = "sim", base_url: str = "") -> Path:
    path.write_text(
        f'[oms]\ndsn = "{dsn}"\n[data]\ndb_path = "{tmp_path / "market.duckdb"}"\n'
        f'[broker]\nkind = "{broker}"\nsim_db_path = "{tmp_path / "sim.sqlite"}"\n'
        + (f'[alpaca]\nbase_url = "{base_url}"\ntimeout_s = 2.0\nmax_retries = 0\n' if base_url else "")
        + '[risk]\naccount = "desk-1"\n'
    )
    return path


@pytest.fixture()
def desk(oms_store: IntentStore, oms_database_url: str, tmp_path: Path) -> Iterator[Desk]:
    with MarketDataStore(tmp_path / "market.duckdb") as market:
        market.generate("daily", N_SYMBOLS, N_BARS, seed=3)
    config_file = _write_config(tmp_path / "config.toml", oms_database_url, tmp_path)
    config = replace(load_config(config_file), oms=OmsConfig(dsn=oms_database_url))
    broker = create_broker(config)
    manager = OrderManager(oms_store, broker, NO_GRACE, account=config.risk.account)
    assert manager.start().passed
    buys = [_intent("SYN00", "buy", 100, "a"), _intent("SYN01", "buy", 40, "b"), _intent("SYN00", "buy", 60, "c")]
    manager.submit_all(buys)
    for _ in range(MAX_POLLS):
        if all(oms_store.get(i.client_order_id).is_final for i in buys):  # type: ignore[union-attr]
            break
        broker.advance()  # type: ignore[attr-defined]
        manager.poll()
    assert all(oms_store.get(i.client_order_id).state is IntentState.FILLED for i in buys)  # type: ignore[union-attr]
    working = [_intent("SYN01", "sell", 10, "d"), _intent("SYN02", "buy", 25, "e")]
    manager.submit_all(working)  # acknowledged, not filled: the market does not move on
    never_sent = oms_store.create(_intent("SYN02", "sell", 5, "f"))
    yield Desk(config_file, oms_database_url, config, oms_store, broker, [i.client_order_id for i in buys],
               [i.client_order_id for i in working] + [never_sent.client_order_id])  # fmt: skip


def _tables(store: IntentStore) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as connection:
        return {table.name: sorted(map(tuple, connection.execute(select(table))), key=repr) for table in metadata.sorted_tables}


def test_orders_text_and_json(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    every = desk.json(capsys, "oms", "orders")
    stored = desk.store.list_intents()
    assert [row["client_order_id"] for row in every["orders"]] == [i.client_order_id for i in stored]
    for row, intent in zip(every["orders"], stored, strict=True):
        assert (row["state"], row["side"], Decimal(row["qty"]), Decimal(row["filled_qty"])) == (
            intent.state.value, intent.side.value, intent.qty, intent.filled_qty)  # fmt: skip
        assert row["created_at"] == intent.created_at.isoformat() and row["updated_at"] == intent.updated_at.isoformat()
        if intent.filled_qty:
            assert abs(Decimal(row["avg_fill_price"]) - intent.filled_notional / intent.filled_qty) <= Decimal("0.00005")
        else:
            assert row["avg_fill_price"] is None
    opened = desk.json(capsys, "oms", "orders", "--open")
    assert [row["client_order_id"] for row in opened["orders"]] == desk.open
    assert {row["state"] for row in opened["orders"]} == {"ACKED", "CREATED"}
    code, out, _ = desk.run(capsys, "oms", "orders", "--open")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["state", "side", "symbol"] and len(lines) == 1 + len(desk.open)
    assert all(cid in out for cid in desk.open) and not any(cid in out for cid in desk.filled)


def test_positions_with_marks_average_cost_and_unrealized_pnl(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    report = desk.json(capsys, "oms", "positions")
    with open_store(desk.config.data, builtin=False) as market:
        panel = market.panel(["SYN00", "SYN01"])
        last_bars = market.last_bar_times(["SYN00", "SYN01"], "1d")
    rows = {row["symbol"]: row for row in report["positions"]}
    assert {s: Decimal(r["qty"]) for s, r in rows.items()} == desk.store.positions() == {"SYN00": 160, "SYN01": 40}
    for column, symbol in enumerate(["SYN00", "SYN01"]):
        fills = [f for cid in desk.filled for f in desk.store.get_fills(cid) if desk.store.get(cid).symbol == symbol]  # type: ignore[union-attr]
        average = sum(f.qty * f.price for f in fills) / sum(f.qty for f in fills)  # buys only: the plain mean
        mark = Decimal(repr(float(panel.close[-1, column])))
        row = rows[symbol]
        assert Decimal(row["mark"]) == mark and abs(Decimal(row["avg_cost"]) - average) <= Decimal("0.00005")
        assert Decimal(row["unrealized_pnl"]) == ((mark - average) * Decimal(row["qty"])).quantize(Decimal("0.01"))
        assert row["mark_ts"] == last_bars[symbol].isoformat()
    unrealized = sum(Decimal(r["unrealized_pnl"]) for r in rows.values())
    assert abs(Decimal(report["totals"]["unrealized_pnl"]) - unrealized) <= Decimal("0.01")
    assert report["notes"] == [] and report["account"] == "desk-1"
    code, out, _ = desk.run(capsys, "oms", "positions")
    assert code == 0 and "account desk-1: 2 positions" in out
    assert any(line.split()[:2] == ["SYN00", "160"] and rows["SYN00"]["unrealized_pnl"] in line for line in out.splitlines())


def test_positions_without_a_market_data_store_say_why(desk: Desk, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = desk.json(capsys, "oms", "positions", "--db", str(tmp_path / "absent.duckdb"))
    assert {row["mark"] for row in report["positions"]} == {None} and report["totals"]["unrealized_pnl"] is None
    assert "no market-data store" in report["notes"][0]
    assert not (tmp_path / "absent.duckdb").exists()


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=[" ".join(a) for a in READ_COMMANDS])
def test_read_commands_change_nothing(desk: Desk, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    before = _tables(desk.store)
    database = desk.store.engine.url.database if desk.store.engine.dialect.name == "sqlite" else None
    desk.store.close()  # SQLite: the last connection folds the write-ahead log into the file
    raw = Path(database).read_bytes() if database else None
    for json_flag in ([], ["--json"]):
        code, out, err = desk.run(capsys, *argv, *json_flag)
        assert code == 0 and out, err
    assert _tables(desk.store) == before
    if database:
        desk.store.close()
        assert Path(database).read_bytes() == raw


def test_cancel_and_cancel_all_pass_while_halted(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = desk.run(capsys, "risk", "state", "HALTED", "--reason", "kill switch drill", "--by", "ops")
    assert code == 0 and out.startswith("account desk-1 set to HALTED")
    sent = len(desk.broker.submissions())  # type: ignore[attr-defined]
    acked, _, created = desk.open
    one = desk.json(capsys, "oms", "cancel", acked)
    assert one["trading_state"] == "HALTED"
    assert [(r["client_order_id"], r["outcome"], r["state_before"], r["state_after"]) for r in one["results"]] == [
        (acked, "canceled", "ACKED", "CANCELED")
    ]
    code, out, _ = desk.run(capsys, "oms", "cancel-all")
    assert code == 0
    rest = [cid for cid in desk.open if cid != acked]
    assert [line.split()[1] for line in out.splitlines() if line.startswith("canceled")] == rest
    assert f"canceled {created} (sell 5 SYN02): CREATED -> CANCELED" in out and "trading state of desk-1: HALTED" in out
    assert {desk.store.get(cid).state for cid in desk.open} == {IntentState.CANCELED}  # type: ignore[union-attr]
    assert all(not desk.broker.get_order(cid).status.is_open for cid in desk.open[:2])  # type: ignore[union-attr]
    assert len(desk.broker.submissions()) == sent  # type: ignore[attr-defined]  # nothing was sent
    again = desk.json(capsys, "oms", "cancel-all")
    assert again["results"] == []
    code, out, _ = desk.run(capsys, "oms", "cancel-all")
    assert code == 0 and out.startswith("no open intents: nothing to cancel")
    code, out, _ = desk.run(capsys, "oms", "cancel", desk.filled[0])
    assert code == 0 and out.startswith(f"already final {desk.filled[0]}")


def test_cancel_of_an_unknown_intent_is_a_clear_error(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    before = _tables(desk.store)
    code, _, err = desk.run(capsys, "oms", "cancel", "CIDv2:nope")
    assert code == 2 and "no intent with client_order_id 'CIDv2:nope'" in err and "oms orders" in err
    assert _tables(desk.store) == before


def test_risk_state_reads_sets_and_audits(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    never = desk.json(capsys, "risk", "state")
    assert (never["state"], never["version"], never["changed_at"], never["audit"]) == ("ACTIVE", 0, None, [])
    code, out, _ = desk.run(capsys, "risk", "state")
    assert code == 0 and out.splitlines()[0] == "account desk-1 is ACTIVE (version 0)"
    desk.json(capsys, "risk", "state", "REDUCING", "--reason", "drawdown", "--by", "alice")
    code, out, _ = desk.run(capsys, "risk", "state", "ACTIVE", "--reason", "reviewed", "--by", "bob")
    assert code == 0 and "by bob at " in out and out.rstrip().endswith("ACTIVE   by bob: reviewed")
    now = desk.json(capsys, "risk", "state", "--audit", "1")
    assert (now["state"], now["changed_by"], now["reason"], now["version"]) == ("ACTIVE", "bob", "reviewed", 2)
    assert [(a["state"], a["changed_by"]) for a in now["audit"]] == [("ACTIVE", "bob")]
    assert [(a["state"], a["changed_by"], a["reason"]) for a in desk.json(capsys, "risk", "state")["audit"]] == [
        ("REDUCING", "alice", "drawdown"), ("ACTIVE", "bob", "reviewed")]  # fmt: skip
    code, _, err = desk.run(capsys, "risk", "state", "HALTED")
    assert code == 2 and "needs --reason" in err
    code, _, err = desk.run(capsys, "risk", "state", "--reason", "why")
    assert code == 2 and "only reads" in err
    assert desk.json(capsys, "risk", "state")["version"] == 2


def test_adopt_positions_on_a_funded_alpaca_account(
    oms_store: IntentStore, oms_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET_KEY)
    monkeypatch.delenv("APCA_API_BASE_URL", raising=False)
    with funded_alpaca(HOLDINGS) as server:
        config = str(_write_config(tmp_path / "alpaca.toml", oms_database_url, tmp_path, "alpaca", server.base_url))
        monkeypatch.setenv("AI_TRADING_OMS_DSN", oms_database_url)
        assert main(["oms", "reconcile", "--config", config]) == 1
        assert "position SPY: OMS 0, broker 100" in capsys.readouterr().out
        assert main(["oms", "adopt-positions", "--config", config, "--reason", "funded account", "--by", "ops"]) == 0
        out = capsys.readouterr().out
        assert "adopted QQQ: 30 at 350.25" in out and "adopted SPY: 100 at 420.5" in out and "2 positions adopted by ops" in out
        assert main(["oms", "reconcile", "--config", config]) == 0
        capsys.readouterr()
        assert main(["oms", "adopt-positions", "--config", config, "--symbols", "SPY", "--reason", "again"]) == 2
        assert "SPY: already adopted" in capsys.readouterr().err
        assert main(["oms", "adopt-positions", "--config", config, "--symbols", "SPY", "--reason", "fix", "--replace", "--by", "lead", "--json"]) == 0
        replaced = json.loads(capsys.readouterr().out)
        assert replaced["account"] == "desk-1"
        assert [(r["symbol"], r["qty"], r["avg_price"], r["adopted_by"], r["version"]) for r in replaced["adopted"]] == [
            ("SPY", "100", "420.5", "lead", 2)]  # fmt: skip
        assert main(["oms", "positions", "--config", config, "--json"]) == 0
        positions = json.loads(capsys.readouterr().out)
    assert {(r["symbol"], r["qty"], r["adopted_qty"], r["avg_cost"], r["mark"]) for r in positions["positions"]} == {
        ("QQQ", "30", "30", "350.2500", None), ("SPY", "100", "100", "420.5000", None)}  # fmt: skip
    assert "no bars" in positions["notes"][0] or "no market-data store" in positions["notes"][0]
    assert main(["oms", "status", "--config", config, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["positions"] == {"QQQ": "30", "SPY": "100"}
