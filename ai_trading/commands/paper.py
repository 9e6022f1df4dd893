"""``ai-trading paper``: the trading loop in real time on Alpaca's bars, with the SimBroker filling them."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ai_trading.commands import add_config_option, split_list


def add_realtime_options(parser: argparse.ArgumentParser) -> None:
    """The options ``paper`` and ``live`` share."""
    parser.add_argument("--model", required=True, help="demo, a registered model name or a signed artifact directory")
    parser.add_argument("--symbols", help="comma-separated symbols: the demo's universe (default: all stored)")
    parser.add_argument("--frequency", default="1d", help="bar frequency: 1d (default), 1min, 5min, 1h ...")
    parser.add_argument("--feed", choices=("iex", "sip"), help="Alpaca data feed (default: the account's)")
    parser.add_argument("--out", type=Path, help="run directory (default: <runtime.runs_dir>/<mode>_<model>); "
                        "the same directory resumes the run")  # fmt: skip
    parser.add_argument("--db", type=Path, help="DuckDB market-data store, written by the feed (default: data.db_path)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_config_option(parser, "[alpaca], [runtime], [execution], [engine], [risk], [cost_model], [manager], [artifacts], [data], [alerts]")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "paper", help="trade a model at every bar close on Alpaca's live bars, filled by the SimBroker (resumable)"
    )
    add_realtime_options(parser)
    parser.add_argument("--dsn", help="OMS database URL (default: an SQLite file in the run directory)")
    parser.set_defaults(handler=_paper)


def run_realtime(args: argparse.Namespace, mode: str, dsn: str | None, real_money: bool) -> int:
    """Run a paper or live command: open the store writable, the run, the loop; print the summary."""
    from ai_trading.commands.replay import run_trading_command
    from ai_trading.config import load_config
    from ai_trading.data.store import MarketDataStore
    from ai_trading.runtime.realtime import (
        RealtimeRequest,
        default_run_dir,
        open_realtime,
    )

    config = load_config(args.config)
    if args.db is not None:
        config = replace(config, data=replace(config.data, db_path=args.db))
    symbols = split_list(args.symbols)
    run_dir = args.out if args.out is not None else default_run_dir(config, mode, args.model)
    request = RealtimeRequest(
        mode, args.model, None if symbols is None else tuple(symbols), args.frequency, run_dir, dsn, real_money, args.feed
    )
    with MarketDataStore(config.data.db_path, exchange_tz=config.data.exchange_tz) as store:
        return run_trading_command(
            mode, lambda stop: open_realtime(config, request, store, stop), run_dir, args.json, config.runtime.progress_interval_s
        )


def _paper(args: argparse.Namespace) -> int:
    return run_realtime(args, "paper", args.dsn, real_money=False)
