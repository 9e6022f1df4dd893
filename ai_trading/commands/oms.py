"""``ai-trading oms``: reconcile with the broker, the operator's view (orders, positions),
cancels, and adopting positions that predate the OMS.

Read commands (``status``, ``orders``, ``positions``) change nothing: no reconciliation,
no migration, no broker call. Cancels always pass, whatever the trading state.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ai_trading.commands import add_config_option, os_user, split_list
from ai_trading.config import AppConfig, load_config

if TYPE_CHECKING:
    from ai_trading.oms.broker import Broker
    from ai_trading.oms.models import OrderIntent

CENT = Decimal("0.01")
PRICE_DIGITS = Decimal("0.0001")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("oms", help="order management: reconcile, orders, positions, cancel, adopt positions")
    # Options work before or after the action; SUPPRESS keeps an action's unset option
    # from overwriting the group's.
    common = argparse.ArgumentParser(add_help=False)
    for where in (parser, common):
        where.add_argument("--dsn", default=argparse.SUPPRESS, help="intent store URL (default: AI_TRADING_OMS_DSN or the configured one)")
        where.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON")
    add_config_option(common, "[oms], [broker], [manager], [alpaca], [data], [execution]")
    actions = parser.add_subparsers(dest="oms_action", required=True)
    reconcile = actions.add_parser(
        "reconcile",
        parents=[common],
        help="resolve open intents, apply missing fills, record foreign orders, compare positions",
    )
    reconcile.set_defaults(handler=_reconcile)
    status = actions.add_parser(
        "status", parents=[common], help="intents per state, open intents, positions, foreign orders (changes nothing)"
    )
    status.set_defaults(handler=_status)
    orders = actions.add_parser("orders", parents=[common], help="intents with state, fills and times (changes nothing)")
    orders.add_argument("--open", action="store_true", help="only intents not yet final")
    orders.set_defaults(handler=_orders)
    positions = actions.add_parser(
        "positions", parents=[common], help="positions with average cost, marks and unrealized P&L (changes nothing)"
    )
    positions.add_argument("--db", type=Path, help="DuckDB market-data store the marks come from (default: data.db_path)")
    positions.set_defaults(handler=_positions)
    cancel = actions.add_parser("cancel", parents=[common], help="cancel one intent (passes in any trading state)")
    cancel.add_argument("client_order_id", metavar="CID")
    cancel.set_defaults(handler=_cancel)
    cancel_all = actions.add_parser("cancel-all", parents=[common], help="cancel every open intent (passes in any trading state)")
    cancel_all.set_defaults(handler=_cancel)
    adopt = actions.add_parser(
        "adopt-positions", parents=[common], help="adopt broker positions that predate the OMS, once and audited"
    )
    adopt.add_argument("--symbols", help="comma-separated symbols (default: every broker position the OMS does not account for)")
    adopt.add_argument("--reason", required=True, help="why (recorded in the audit)")
    adopt.add_argument("--by", help="who adopts (default: the OS user)")
    adopt.add_argument("--force", action="store_true", help="adopt the difference even where the OMS has fills or open intents (audited)")
    adopt.add_argument("--replace", action="store_true", help="adopt again a symbol adopted before (audited)")
    adopt.set_defaults(handler=_adopt)


def _config(args: argparse.Namespace) -> AppConfig:
    config = load_config(args.config)
    dsn = getattr(args, "dsn", None)
    return config if dsn is None else replace(config, oms=replace(config.oms, dsn=dsn))


def _json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def create_broker(config: AppConfig) -> Broker:
    """The configured broker: the SimBroker on the market-data store, or Alpaca."""
    from ai_trading.errors import ConfigError

    if config.broker.kind == "alpaca":
        from ai_trading.brokers.alpaca import AlpacaBroker

        return AlpacaBroker(config.alpaca)
    if config.broker.kind == "sim":
        from ai_trading.brokers.sim import SimBroker
        from ai_trading.brokers.sim_market import StoreMarket, parse_binding
        from ai_trading.data.store import open_store

        # A state file keeps the market it was bound to (a replay's universe and range);
        # a new one trades every stored daily symbol from its first bar.
        binding = SimBroker.stored_binding(config.broker.sim_db_path)
        store = open_store(config.data)
        market = StoreMarket(store, tuple(store.symbols()), "1d") if binding is None else StoreMarket(store, *parse_binding(binding))
        return SimBroker(config.broker.sim_db_path, market, config.execution)
    raise ConfigError(f"broker.kind must be 'sim' or 'alpaca', got {config.broker.kind!r}")


def _reconcile(args: argparse.Namespace) -> int:
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.reconcile import Reconciler

    config = _config(args)
    with IntentStore.open(config.oms) as store:
        report = Reconciler(store, create_broker(config), config.manager, account=config.risk.account).run()
    print(report.to_json() if _json(args) else report.summary())
    if not _json(args):
        for issue in report.issues:
            print(f"  issue {issue.kind}: {issue.client_order_id}: {issue.detail}")
        for mismatch in report.position_mismatches:
            adopted = f" (adopted {mismatch.adopted_qty})" if mismatch.adopted_qty else ""
            print(f"  position {mismatch.symbol}: OMS {mismatch.oms_qty}{adopted}, broker {mismatch.broker_qty}")
        for order in report.foreign_orders:
            shaped = " (CIDv2-shaped)" if order.cid_shaped else ""
            print(f"  foreign {order.broker_order_id} {order.client_order_id}{shaped}: {order.side} {order.qty} {order.symbol}")
    return 0 if report.passed else 1


def _status(args: argparse.Namespace) -> int:
    from ai_trading.oms.adoption import oms_positions
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.models import IntentState

    config = _config(args)
    with IntentStore.open(config.oms) as store:
        intents = store.list_intents()
        status = {
            "intents": {state.value: sum(1 for i in intents if i.state is state) for state in IntentState},
            "open": [
                {"client_order_id": i.client_order_id, "state": i.state.value, "filled_qty": format(i.filled_qty, "f"), "qty": format(i.qty, "f")}
                for i in intents
                if not i.is_final
            ],
            "positions": {symbol: format(qty, "f") for symbol, qty in oms_positions(store, config.risk.account).items()},
            "foreign_orders": len(store.foreign_orders()),
        }
    if _json(args):
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    counts = ", ".join(f"{state} {n}" for state, n in status["intents"].items() if n)
    print(f"intents: {counts or 'none'}")
    for entry in status["open"]:
        print(f"  open {entry['client_order_id']}: {entry['state']} {entry['filled_qty']}/{entry['qty']}")
    print("positions: " + (", ".join(f"{s} {q}" for s, q in status["positions"].items()) or "flat"))
    print(f"foreign orders: {status['foreign_orders']}")
    return 0


def _text(value: Decimal | None, quantum: Decimal | None = None) -> str | None:
    """A decimal as plain text (rounded to ``quantum`` when given); None stays None."""
    if value is None:
        return None
    return format(value if quantum is None else value.quantize(quantum), "f")


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _order_row(intent: OrderIntent) -> dict[str, Any]:
    return {
        "client_order_id": intent.client_order_id,
        "symbol": intent.symbol,
        "side": intent.side.value,
        "qty": _text(intent.qty),
        "order_type": intent.order_type.value,
        "limit_price": _text(intent.limit_price),
        "state": intent.state.value,
        "filled_qty": _text(intent.filled_qty),
        "avg_fill_price": _text(intent.avg_fill_price, PRICE_DIGITS),
        "fees": _text(intent.fees),
        "broker_order_id": intent.broker_order_id,
        "created_at": _stamp(intent.created_at),
        "updated_at": _stamp(intent.updated_at),
        "last_error": intent.last_error,
    }


def _orders(args: argparse.Namespace) -> int:
    from ai_trading.oms.intent_store import IntentStore

    config = _config(args)
    with IntentStore.open(config.oms) as store:
        intents = store.open_intents() if args.open else store.list_intents()
    rows = [_order_row(intent) for intent in intents]
    if _json(args):
        print(json.dumps({"open_only": args.open, "orders": rows}, indent=2))
        return 0
    if not rows:
        print("no open intents" if args.open else "no intents")
        return 0
    print(f"{'state':<14} {'side':<4} {'symbol':<8} {'qty':>10} {'filled':>10} {'avg price':>12} {'created (UTC)':<19} {'updated (UTC)':<19} client_order_id")
    for row, intent in zip(rows, intents, strict=True):
        print(
            f"{row['state']:<14} {row['side']:<4} {row['symbol']:<8} {row['qty']:>10} {row['filled_qty']:>10} "
            f"{row['avg_fill_price'] or '-':>12} {intent.created_at:%Y-%m-%d %H:%M:%S} {intent.updated_at:%Y-%m-%d %H:%M:%S} "
            f"{row['client_order_id']}"
        )
    return 0


def _marks(config: AppConfig, symbols: list[str]) -> tuple[dict[str, tuple[Decimal, datetime]], list[str]]:
    """The last close of each symbol in the market-data store (its finest stored frequency)
    and when that bar was, plus notes on the symbols without one. Opens the store read-only."""
    from ai_trading.data import open_store
    from ai_trading.errors import DataStoreError

    if not symbols:
        return {}, []
    try:
        store = open_store(config.data, builtin=False)
    except DataStoreError as exc:
        return {}, [f"no marks: {exc}"]
    marks: dict[str, tuple[Decimal, datetime]] = {}
    with store:
        stored = set(store.symbols())
        for symbol, frequencies in store.frequencies([s for s in symbols if s in stored]).items():
            last = store.last_bar_times([symbol], frequencies[0])[symbol]
            panel = store.panel([symbol], start=last, frequency=frequencies[0])
            marks[symbol] = (Decimal(repr(float(panel.close[-1, 0]))), last)
    missing = [symbol for symbol in symbols if symbol not in marks]
    return marks, [f"no bars in {config.data.db_path} for {', '.join(missing)}: no mark"] if missing else []


def _positions(args: argparse.Namespace) -> int:
    from ai_trading.oms.adoption import AdoptionStore
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.position_book import read_book

    config = _config(args)
    if args.db is not None:
        config = replace(config, data=replace(config.data, db_path=args.db))
    account = config.risk.account
    with IntentStore.open(config.oms) as store:
        book = read_book(store, AdoptionStore(store.engine).adopted(account).values()).positions()
    held = [position for position in book if position.qty]
    marks, notes = _marks(config, [position.symbol for position in held])
    rows: list[dict[str, Any]] = []
    value = unrealized = Decimal(0)
    complete = True
    for position in held:
        mark, mark_ts = marks.get(position.symbol, (None, None))
        pnl = None if mark is None else position.unrealized_pnl(mark)
        market_value = None if mark is None else mark * position.qty
        complete = complete and pnl is not None and market_value is not None
        value += market_value or 0
        unrealized += pnl or 0
        rows.append({
            "symbol": position.symbol, "qty": _text(position.qty), "adopted_qty": _text(position.adopted_qty),
            "avg_cost": _text(position.avg_cost, PRICE_DIGITS), "mark": _text(mark), "mark_ts": _stamp(mark_ts),
            "market_value": _text(market_value, CENT), "unrealized_pnl": _text(pnl, CENT),
            "realized_pnl": _text(position.realized_pnl, CENT),
        })  # fmt: skip
    totals = {
        "market_value": _text(value, CENT) if complete else None,
        "unrealized_pnl": _text(unrealized, CENT) if complete else None,
        "realized_pnl": _text(sum((p.realized_pnl for p in book), Decimal(0)), CENT),
    }
    if _json(args):
        print(json.dumps({"account": account, "positions": rows, "totals": totals, "notes": notes}, indent=2))
        return 0
    print(f"account {account}: {len(rows)} positions (marks: last close in {config.data.db_path})")
    if rows:
        print(f"{'symbol':<8} {'qty':>10} {'adopted':>10} {'avg cost':>12} {'mark':>12} {'mark bar (UTC)':<16} {'value':>14} {'unrealized':>12} {'realized':>12}")
    for row in rows:
        bar = row["mark_ts"][:16].replace("T", " ") if row["mark_ts"] else "-"
        print(
            f"{row['symbol']:<8} {row['qty']:>10} {row['adopted_qty']:>10} {row['avg_cost'] or 'n/a':>12} {row['mark'] or 'n/a':>12} "
            f"{bar:<16} {row['market_value'] or 'n/a':>14} {row['unrealized_pnl'] or 'n/a':>12} {row['realized_pnl']:>12}"
        )
    print(
        f"total: value {totals['market_value'] or 'n/a'}, unrealized {totals['unrealized_pnl'] or 'n/a'}, "
        f"realized {totals['realized_pnl']} (fees apart)"
    )
    for note in notes:
        print(f"note: {note}")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    """``cancel CID`` and ``cancel-all``: through the order manager's cancel path, which
    no trading state blocks; then the broker's answer (and any fills) is recorded for the
    intents asked about, without sending anything."""
    from ai_trading.errors import UnknownIntent
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.manager import OrderManager

    config = _config(args)
    with IntentStore.open(config.oms) as store:
        if args.oms_action == "cancel" and store.get(args.client_order_id) is None:
            raise UnknownIntent(f"no intent with client_order_id {args.client_order_id!r}: see `ai-trading oms orders`")
        manager = OrderManager(store, create_broker(config), config.manager, account=config.risk.account)
        outcomes = manager.cancel_many([args.client_order_id]) if args.oms_action == "cancel" else manager.cancel_open()
        state = manager.trading_state.get(config.risk.account).state.value
    results: list[dict[str, Any]] = []
    for outcome in outcomes:
        intent, after = outcome.before, outcome.after
        if intent.is_final:
            result = "already_final"
        elif outcome.error is not None:
            result = "failed"
        else:
            result = "canceled" if after is not None and after.state.value == "CANCELED" else "cancel_requested"
        results.append(
            {"client_order_id": intent.client_order_id, "symbol": intent.symbol, "side": intent.side.value,
             "qty": _text(intent.qty), "state_before": intent.state.value,
             "state_after": None if after is None else after.state.value, "outcome": result, "detail": outcome.error}
        )  # fmt: skip
    failed = sum(1 for entry in results if entry["outcome"] == "failed")
    if _json(args):
        print(json.dumps({"account": config.risk.account, "trading_state": state, "results": results}, indent=2))
        return 1 if failed else 0
    if not results:
        print("no open intents: nothing to cancel")
    for entry in results:
        what = f"{entry['side']} {entry['qty']} {entry['symbol']}"
        if entry["outcome"] == "failed":
            print(f"NOT canceled {entry['client_order_id']} ({what}, {entry['state_before']}): {entry['detail']}")
        elif entry["outcome"] == "already_final":
            print(f"already final {entry['client_order_id']} ({what}): {entry['state_before']}")
        elif entry["outcome"] == "canceled":
            print(f"canceled {entry['client_order_id']} ({what}): {entry['state_before']} -> {entry['state_after']}")
        else:
            print(
                f"cancel requested {entry['client_order_id']} ({what}): {entry['state_after']} until the broker confirms "
                "(`ai-trading oms reconcile` or the trading loop records it)"
            )
    print(f"trading state of {config.risk.account}: {state}")
    return 1 if failed else 0


def _adopt(args: argparse.Namespace) -> int:
    from ai_trading.oms.adoption import adopt_positions
    from ai_trading.oms.intent_store import IntentStore

    config = _config(args)
    account = config.risk.account
    with IntentStore.open(config.oms) as store:
        adopted = adopt_positions(
            store,
            create_broker(config),
            account,
            symbols=split_list(args.symbols),
            reason=args.reason,
            adopted_by=args.by or os_user(),
            force=args.force,
            replace=args.replace,
        )
    rows = [
        {"symbol": p.symbol, "qty": _text(p.qty), "avg_price": _text(p.avg_price), "adopted_by": p.adopted_by,
         "adopted_at": _stamp(p.adopted_at), "reason": p.reason, "version": p.version}
        for p in adopted
    ]  # fmt: skip
    if _json(args):
        print(json.dumps({"account": account, "adopted": rows}, indent=2))
        return 0
    for row in rows:
        again = " (re-adopted)" if row["version"] > 1 else ""
        print(f"adopted {row['symbol']}: {row['qty']} at {row['avg_price'] or 'unknown price'}{again}")
    print(f"account {account}: {len(rows)} positions adopted by {adopted[0].adopted_by}; run `ai-trading oms reconcile` to check")
    return 0
