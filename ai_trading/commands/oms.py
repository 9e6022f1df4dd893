"""``ai-trading oms``: reconcile the intent store with the broker, and show its status."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from ai_trading.commands import add_config_option
from ai_trading.config import AppConfig, load_config

if TYPE_CHECKING:
    from ai_trading.oms.broker import Broker


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("oms", help="order management: reconcile with the broker, status")
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
        from ai_trading.data.store import open_store

        with open_store(config.data) as store:
            panel = store.panel()
        return SimBroker(config.broker.sim_db_path, panel, config.execution)
    raise ConfigError(f"broker.kind must be 'sim' or 'alpaca', got {config.broker.kind!r}")


def _reconcile(args: argparse.Namespace) -> int:
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.reconcile import Reconciler

    config = _config(args)
    with IntentStore.open(config.oms) as store:
        report = Reconciler(store, create_broker(config), config.manager).run()
    print(report.to_json() if _json(args) else report.summary())
    if not _json(args):
        for issue in report.issues:
            print(f"  issue {issue.kind}: {issue.client_order_id}: {issue.detail}")
        for mismatch in report.position_mismatches:
            print(f"  position {mismatch.symbol}: OMS {mismatch.oms_qty}, broker {mismatch.broker_qty}")
        for order in report.foreign_orders:
            shaped = " (CIDv2-shaped)" if order.cid_shaped else ""
            print(f"  foreign {order.broker_order_id} {order.client_order_id}{shaped}: {order.side} {order.qty} {order.symbol}")
    return 0 if report.passed else 1


def _status(args: argparse.Namespace) -> int:
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
            "positions": {symbol: format(qty, "f") for symbol, qty in store.positions().items()},
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
