"""``ai-trading live``: the trading loop in real time, orders through Alpaca (paper endpoint unless told otherwise)."""

from __future__ import annotations

import argparse

from ai_trading.commands.paper import add_realtime_options, run_realtime


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "live", help="trade a model at every bar close through a real broker (Alpaca's paper endpoint by default; resumable)"
    )
    add_realtime_options(parser)
    parser.add_argument("--broker", required=True, choices=("alpaca",), help="the broker to send orders to")
    parser.add_argument("--dsn", help="OMS database URL (default: [oms] dsn, where `ai-trading oms` looks)")
    parser.add_argument(
        "--i-mean-real-money", dest="real_money", action="store_true",
        help="allow Alpaca's live endpoint (https://api.alpaca.markets): orders trade real money; "
        "without it any base URL other than the paper endpoint is refused",
    )  # fmt: skip
    parser.set_defaults(handler=_live)


def _live(args: argparse.Namespace) -> int:
    from ai_trading.config import load_config

    dsn = args.dsn if args.dsn is not None else load_config(args.config).oms.dsn
    return run_realtime(args, "live", dsn, real_money=args.real_money)
