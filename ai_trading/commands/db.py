"""``ai-trading db``: migrate the OMS database (the only way its schema is created)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from ai_trading.commands import add_config_option
from ai_trading.config import OmsConfig, load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("db", help="migrate the OMS database (Alembic)")
    parser.add_argument("--dsn", help="database URL (default: AI_TRADING_OMS_DSN or the configured one)")
    actions = parser.add_subparsers(dest="db_action", required=True)
    upgrade = actions.add_parser("upgrade", help="migrate up to REV (default: head)")
    upgrade.add_argument("revision", nargs="?", default="head", metavar="REV")
    upgrade.set_defaults(handler=_upgrade)
    downgrade = actions.add_parser("downgrade", help="migrate down to REV (e.g. -1, 0001, base)")
    downgrade.add_argument("revision", metavar="REV")
    downgrade.set_defaults(handler=_downgrade)
    current = actions.add_parser("current", help="show the database's revision")
    current.set_defaults(handler=_current)
    history = actions.add_parser("history", help="list the revisions, oldest first")
    history.set_defaults(handler=_history)
    for action in (upgrade, downgrade, current, history):
        add_config_option(action, "[oms]")


def _config(args: argparse.Namespace) -> OmsConfig:
    config = load_config(args.config).oms
    return config if args.dsn is None else replace(config, dsn=args.dsn)


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
    status = "up to date" if current == head else f"head is {head}: run `ai-trading db upgrade`"
    print(f"{current or 'base (empty)'} ({status})")
    return 0


def _history(args: argparse.Namespace) -> int:
    from ai_trading.oms import migrate

    current = migrate.database_revision(_config(args))
    for revision, message in migrate.revisions():
        marker = " (current)" if revision == current else ""
        print(f"{revision}  {message}{marker}")
    return 0
