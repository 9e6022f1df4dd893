"""``ai-trading risk``: read or set the account's trading state (ACTIVE, REDUCING, HALTED).

Without a state ``risk state`` only reads: the state with who set it, when and why, and
the latest changes of the audit. With one it sets it through
:meth:`~ai_trading.oms.trading_state.TradingStateStore.set`, audited with the reason and
who set it (the OS user unless ``--by``). The account is ``[risk] account``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ai_trading.commands import add_config_option, os_user
from ai_trading.config import AppConfig, load_config
from ai_trading.oms.models import TradingState

if TYPE_CHECKING:
    from ai_trading.oms.models import TradingStateRecord

DEFAULT_AUDIT_ROWS = 10
DEFAULT_REBALANCES = 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("risk", help="trading state of the account: read it, or set it (audited)")
    # Options work before or after the action; SUPPRESS keeps an action's unset option
    # from overwriting the group's.
    common = argparse.ArgumentParser(add_help=False)
    for where in (parser, common):
        where.add_argument("--dsn", default=argparse.SUPPRESS, help="OMS database URL (default: AI_TRADING_OMS_DSN or the configured one)")
        where.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print machine-readable JSON")
    add_config_option(common, "[oms], [risk]")
    actions = parser.add_subparsers(dest="risk_action", required=True)
    state = actions.add_parser(
        "state",
        parents=[common],
        help="show the trading state with who/when/why and its recent audit; with STATE, set it",
    )
    state.add_argument("state", nargs="?", choices=[s.value for s in TradingState], metavar="STATE",
                       help="ACTIVE, REDUCING (only exposure-reducing orders) or HALTED (no new orders; cancels pass)")  # fmt: skip
    state.add_argument("--reason", help="why (required when setting; recorded in the audit)")
    state.add_argument("--by", help="who sets it (default: the OS user)")
    state.add_argument("--audit", type=int, default=DEFAULT_AUDIT_ROWS, metavar="N", help=f"audit rows shown, newest last (default {DEFAULT_AUDIT_ROWS})")
    state.set_defaults(handler=_state)
    denials = actions.add_parser(
        "denials",
        parents=[common],
        help="the orders the pre-trade checks refused, per rebalance: reason, limit and value (changes nothing)",
    )
    denials.add_argument("--last", type=int, default=DEFAULT_REBALANCES, metavar="N", help=f"rebalances shown, newest last (default {DEFAULT_REBALANCES})")
    denials.set_defaults(handler=_denials)


def _config(args: argparse.Namespace) -> AppConfig:
    config = load_config(args.config)
    dsn = getattr(args, "dsn", None)
    return config if dsn is None else replace(config, oms=replace(config.oms, dsn=dsn))


def _record(record: TradingStateRecord) -> dict[str, Any]:
    return {
        "state": record.state.value,
        "reason": record.reason,
        "changed_by": record.changed_by,
        "changed_at": None if record.changed_at is None else record.changed_at.isoformat(),
        "version": record.version,
    }


def _state(args: argparse.Namespace) -> int:
    from ai_trading.errors import ConfigError
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.trading_state import TradingStateStore

    if args.audit < 0:
        raise ConfigError(f"--audit must be >= 0, got {args.audit}")
    if args.state is not None and not (args.reason or "").strip():
        raise ConfigError(f"setting the trading state to {args.state} needs --reason \"...\" (it is audited)")
    if args.state is None and (args.reason or args.by):
        raise ConfigError("--reason and --by go with a STATE to set; without one `risk state` only reads")
    config = _config(args)
    account = config.risk.account
    with IntentStore.open(config.oms) as store:
        states = TradingStateStore(store.engine)
        changed = args.state is not None
        if changed:
            states.set(account, args.state, reason=args.reason, changed_by=args.by or os_user())
        current = states.get(account)
        audit = states.audit(account)
    recent = audit[-args.audit :] if args.audit else []
    if getattr(args, "json", False):
        payload = {"account": account, "changed": changed, **_record(current), "audit": [_record(r) for r in recent]}
        print(json.dumps(payload, indent=2))
        return 0
    when = "never set" if current.changed_at is None else f"{current.changed_at:%Y-%m-%d %H:%M:%S} UTC"
    verb = "set to" if changed else "is"
    print(f"account {account} {verb} {current.state.value} (version {current.version})")
    if current.changed_at is not None:
        print(f"  by {current.changed_by} at {when}: {current.reason}")
    else:
        print(f"  {current.reason}")
    if recent:
        print(f"audit (last {len(recent)} of {len(audit)}):")
        for record in recent:
            stamp = "" if record.changed_at is None else f"{record.changed_at:%Y-%m-%d %H:%M:%S}"
            print(f"  v{record.version} {stamp} {record.state.value:<8} by {record.changed_by}: {record.reason}")
    return 0


def _denials(args: argparse.Namespace) -> int:
    from ai_trading.errors import ConfigError
    from ai_trading.oms.intent_store import IntentStore
    from ai_trading.oms.rebalance_log import RebalanceLog

    if args.last < 1:
        raise ConfigError(f"--last must be >= 1, got {args.last}")
    config = _config(args)
    account = config.risk.account
    with IntentStore.open(config.oms) as store:
        records = RebalanceLog(store.engine).recent_with_denials(account, args.last)
    rows = [
        {"decided_at": r.decided_at.isoformat(), "strategy": r.strategy, "model_version": r.model_version,
         "session": r.session.isoformat(), "trading_state": r.trading_state.value, "orders_sent": r.n_orders,
         "denials": [{"symbol": d.symbol, "side": d.side.value, "qty": str(d.qty), "reason": d.reason,
                      "limit": str(d.limit), "value": str(d.value)} for d in r.denials]}
        for r in records
    ]  # fmt: skip
    if getattr(args, "json", False):
        print(json.dumps({"account": account, "rebalances": rows}, indent=2))
        return 0
    if not rows:
        print(f"account {account}: no rebalance refused an order")
    for row in rows:
        print(f"{row['decided_at']} {row['strategy']} v{row['model_version']} ({row['trading_state']}): "
              f"{row['orders_sent']} sent, {len(row['denials'])} refused")  # fmt: skip
        for d in row["denials"]:
            print(f"  {d['side']} {d['qty']} {d['symbol']}: {d['reason']} (limit {d['limit']}, value {d['value']})")
    return 0
