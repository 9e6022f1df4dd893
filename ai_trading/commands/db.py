"""``ai-trading db``: migrate the OMS database (the only way its schema is created)."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from ai_trading.commands import add_config_option
from ai_trading.config import OmsConfig, load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("db", help="migrate the OMS database (Alembic)")
    # --dsn works before or after the action; SUPPRESS keeps an action's unset option from
    # overwriting the group's.
    dsn_help = "database URL (default: AI_TRADING_OMS_DSN or the configured one)"
    parser.add_argument("--dsn", default=argparse.SUPPRESS, help=dsn_help)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", default=argparse.SUPPRESS, help=dsn_help)
    add_config_option(common, "[oms]")
    actions = parser.add_subparsers(dest="db_action", required=True)
    upgrade = actions.add_parser("upgrade", parents=[common], help="migrate up to REV (default: head)")
    upgrade.add_argument("revision", nargs="?", default="head", metavar="REV")
    upgrade.set_defaults(handler=_upgrade)
    downgrade = actions.add_parser("downgrade", parents=[common], help="migrate down to REV (e.g. -1, 0001, base)")
    downgrade.add_argument("revision", metavar="REV")
    downgrade.set_defaults(handler=_downgrade)
    current = actions.add_parser("current", parents=[common], help="show the database's revision (changes nothing)")
    current.add_argument("--json", action="store_true", help="print machine-readable JSON")
    current.set_defaults(handler=_current)
    history = actions.add_parser("history", parents=[common], help="list the revisions, oldest first")
    history.add_argument("--json", action="store_true", help="print machine-readable JSON")
    history.set_defaults(handler=_history)


def _config(args: argparse.Namespace) -> OmsConfig:
    config = load_config(args.config).oms
    dsn = getattr(args, "dsn", None)
    return config if dsn is None else replace(config, dsn=dsn)


def _upgrade(args: argparse.Namespace) -> int:
    from ai_trading.oms import migrate

    config = _config(args)
    migrate.upgrade(config, args.revision)
    print(f"database at revision {migrate.database_revision(config)}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from ai_trading.oms import migrate

    config = _config(args)
    migrate.downgrade(config, args.revision)
    print(f"database at revision {migrate.database_revision(config) or 'base (empty)'}")
    return 0


def _current(args: argparse.Namespace) -> int:
    from ai_trading.oms import migrate

    current = migrate.database_revision(_config(args))
    head = migrate.head_revision()
    if args.json:
        print(json.dumps({"current": current, "head": head, "up_to_date": current == head}))
        return 0
    status = "up to date" if current == head else f"head is {head}: run `ai-trading db upgrade`"
    print(f"{current or 'base (empty)'} ({status})")
    return 0


def _history(args: argparse.Namespace) -> int:
    from ai_trading.oms import migrate

    current = migrate.database_revision(_config(args))
    if args.json:
        rows = [{"revision": r, "message": m, "current": r == current} for r, m in migrate.revisions()]
        print(json.dumps(rows, indent=2))
        return 0
    for revision, message in migrate.revisions():
        marker = " (current)" if revision == current else ""
        print(f"{revision}  {message}{marker}")
    return 0
