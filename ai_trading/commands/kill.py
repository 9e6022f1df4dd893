"""``ai-trading kill``: the kill switch. ``on`` halts the account (optionally canceling open
orders and flattening positions), ``off`` resets it explicitly, ``status`` shows it.

The state is the durable trading state in the OMS database (the one ``risk state`` shows),
so every process trading the account stops at its next send; every change is audited
with who, when and why.
"""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ai_trading.commands import add_config_option
from ai_trading.config import AppConfig, load_config

if TYPE_CHECKING:
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.manager import CancelOutcome, OrderManager
    from ai_trading.oms.models import OrderIntent, TradingStateRecord

SECTIONS = "[oms], [risk], [broker], [manager], [data], [execution]"
STATUS_AUDIT_ROWS = 10


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("kill", help="the kill switch: halt trading (cancel, flatten), reset it, show it")
    actions = parser.add_subparsers(dest="kill_action", required=True)
    on = actions.add_parser(
        "on",
        help="set the account HALTED: no process sends a new order from its next send on",
        description="Sets the account's trading state to HALTED (audited). --cancel-open then cancels every open "
        "order; --flatten sends one closing order per position through the audited flatten path that HALTED "
        "allows (after start-up reconciliation with the broker passes).",
    )
    on.add_argument("--cancel-open", action="store_true", help="cancel every open order (cancels always pass)")
    on.add_argument("--flatten", action="store_true", help="send closing orders for every position (audited)")
    off = actions.add_parser("off", help="reset the account to ACTIVE (the only way out of HALTED; audited)")
    status = actions.add_parser("status", help="the account's trading state and its latest changes")
    for action in (on, off):
        action.add_argument("--reason", required=True, help="why (kept in the audit log)")
        action.add_argument("--by", help="who (default: the login name)")
    on.set_defaults(handler=_on)
    off.set_defaults(handler=_off)
    status.set_defaults(handler=_status)
    for action in (on, off, status):
        action.add_argument("--json", action="store_true", help="print machine-readable JSON")
        add_config_option(action, SECTIONS)


def _record(record: TradingStateRecord) -> dict[str, Any]:
    return {
        "account": record.account, "state": record.state.value, "reason": record.reason,
        "changed_by": record.changed_by, "version": record.version,
        "changed_at": None if record.changed_at is None else record.changed_at.isoformat(),
    }  # fmt: skip


def _order(intent: OrderIntent) -> dict[str, Any]:
    return {"client_order_id": intent.client_order_id, "symbol": intent.symbol, "side": intent.side.value,
            "qty": format(intent.qty, "f"), "state": intent.state.value, "error": intent.last_error}  # fmt: skip


def _cancel_row(outcome: CancelOutcome) -> dict[str, Any]:
    row = _order(outcome.before)
    row.update(state_after=None if outcome.after is None else outcome.after.state.value, error=outcome.error)
    return row


def _manager(config: AppConfig, store: IntentStore) -> OrderManager:
    from ai_trading.commands.oms import create_broker
    from ai_trading.oms.manager import OrderManager

    return OrderManager(store, create_broker(config), config.manager, account=config.risk.account)


def _on(args: argparse.Namespace) -> int:
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.models import TradingState
    from ai_trading.oms.trading_state import TradingStateStore

    config = load_config(args.config)
    by = args.by or getpass.getuser()
    document: dict[str, Any] = {"canceled": None, "flatten": None}
    with IntentStore.open(config.oms) as store:
        # Halt first, before any broker call: that is what stops every sender.
        record = TradingStateStore(store.engine).set(config.risk.account, TradingState.HALTED, reason=args.reason, changed_by=by)
        document["state"] = _record(record)
        if args.cancel_open or args.flatten:
            manager = _manager(config, store)
            if args.cancel_open:
                document["canceled"] = [_cancel_row(outcome) for outcome in manager.cancel_open()]
            if args.flatten:
                document["flatten"] = _flatten(config, manager, args.reason, by)
    failed = any(row["error"] for row in document["canceled"] or []) or bool((document["flatten"] or {}).get("error"))
    if args.json:
        print(json.dumps(document, indent=2))
        return 1 if failed else 0
    print(f"kill switch ON: {record.account} is HALTED (by {by}: {args.reason}; version {record.version})")
    for row in document["canceled"] or []:
        outcome = f"NOT canceled: {row['error']}" if row["error"] else f"{row['state']} -> {row['state_after']}"
        print(f"  cancel {row['client_order_id']} ({row['side']} {row['qty']} {row['symbol']}): {outcome}")
    if document["canceled"] == []:
        print("  no open orders to cancel")
    flatten = document["flatten"]
    if flatten is not None:
        if flatten["error"]:
            print(f"  flatten NOT done: {flatten['error']}")
        for row in flatten["orders"]:
            print(f"  flatten {row['client_order_id']} ({row['side']} {row['qty']} {row['symbol']}): {row['state']}")
        for symbol, why in flatten["skipped"].items():
            print(f"  flatten skipped {symbol}: {why}")
        if not flatten["error"] and not flatten["orders"] and not flatten["skipped"]:
            print("  no positions to flatten")
    return 1 if failed else 0


def _flatten(config: AppConfig, manager: OrderManager, reason: str, by: str) -> dict[str, Any]:
    """Reconcile, plan and send the closing orders; a refusal is reported, not raised,
    because the account is already halted and the operator must see what happened."""
    from ai_trading.errors import FlattenRefused, ReconciliationError, TradingBlocked

    session = datetime.now(ZoneInfo(config.data.exchange_tz)).date()
    try:
        report = manager.start()
        if not report.passed:
            return {"orders": [], "skipped": {}, "error": f"start-up reconciliation found differences ({report.summary()}): "
                    "resolve them (`ai-trading oms reconcile`), then `kill on --flatten` again"}  # fmt: skip
        plan = manager.plan_flatten(session)
        sent = manager.submit_flatten(plan.intents, authorised_by=by, reason=reason)
    except (ReconciliationError, TradingBlocked, FlattenRefused) as exc:
        return {"orders": [], "skipped": {}, "error": str(exc)}
    return {"orders": [_order(intent) for intent in sent], "skipped": dict(plan.skipped), "error": None}


def _off(args: argparse.Namespace) -> int:
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.models import TradingState
    from ai_trading.oms.trading_state import TradingStateStore

    config = load_config(args.config)
    by = args.by or getpass.getuser()
    with IntentStore.open(config.oms) as store:
        states = TradingStateStore(store.engine)
        before = states.get(config.risk.account)
        record = states.set(config.risk.account, TradingState.ACTIVE, reason=args.reason, changed_by=by)
    if args.json:
        print(json.dumps({"previous_state": before.state.value, "state": _record(record)}, indent=2))
        return 0
    print(f"kill switch OFF: {record.account} is ACTIVE again (was {before.state.value}; by {by}: {args.reason}; version {record.version})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.trading_state import TradingStateStore

    config = load_config(args.config)
    with IntentStore.open(config.oms) as store:
        states = TradingStateStore(store.engine)
        record = states.get(config.risk.account)
        audit = states.audit(config.risk.account)[-STATUS_AUDIT_ROWS:]
    if args.json:
        print(json.dumps({**_record(record), "audit": [_record(row) for row in audit]}, indent=2))
        return 0
    since = "never set" if record.changed_at is None else f"since {record.changed_at.isoformat()} by {record.changed_by}"
    print(f"{record.account}: {record.state.value} ({since}): {record.reason}")
    for row in audit:
        assert row.changed_at is not None
        print(f"  {row.changed_at.isoformat()}  {row.state.value:<8}  by {row.changed_by}: {row.reason}")
    return 0
