"""``ai-trading data``: fill the market-data store and look inside it."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from ai_trading.commands import add_config_option
from ai_trading.config import DataConfig, load_config

FREQUENCY_CHOICES = ("daily", "1min")  # ai_trading.data.synthetic.FREQUENCIES, kept import-free


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("data", help="market-data store: generate, ingest, info")
    actions = parser.add_subparsers(dest="data_action", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, help="DuckDB file (default: AI_TRADING_DATA_DB or [data] db_path)")
    add_config_option(common, "[data]")

    generate = actions.add_parser(
        "generate",
        parents=[common],
        help="write the built-in synthetic data set",
        description="Writes seeded synthetic bars (GARCH volatility, fat tails, liquidity tiers, spreads). "
        "Daily symbols are SYN00.., 1-minute symbols SYNM00.., so both sets can share one store.",
    )
    generate.add_argument("--frequency", choices=FREQUENCY_CHOICES, default="daily")
    generate.add_argument("--symbols", type=_positive_int, help="number of symbols (default: [data] synthetic_symbols)")
    generate.add_argument("--bars", type=_positive_int, help="bars per symbol (default: [data] synthetic_*_bars)")
    generate.add_argument("--seed", type=int, help="generator seed (default: [data] synthetic_seed)")
    generate.set_defaults(handler=_generate)

    ingest = actions.add_parser(
        "ingest",
        parents=[common],
        help="validate and write CSV/Parquet bar files",
        description="Reads yfinance, Alpaca or lowercase column spellings. Every file is validated first; "
        "if any is bad nothing is written. Rows with an existing (symbol, ts) are replaced.",
    )
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument("--symbol", help="symbol of files without a symbol column")
    ingest.set_defaults(handler=_ingest)

    info = actions.add_parser(
        "info",
        parents=[common],
        help="symbols, rows, date range and bar spacing (writes the built-in set into an empty store)",
    )
    info.set_defaults(handler=_info)


def _config(args: argparse.Namespace) -> DataConfig:
    config = load_config(args.config).data
    return config if args.db is None else replace(config, db_path=args.db)


def _generate(args: argparse.Namespace) -> int:
    from ai_trading.data import DAILY, MarketDataStore

    config = _config(args)
    default_bars = config.synthetic_daily_bars if args.frequency == DAILY else config.synthetic_minute_bars
    with MarketDataStore(config.db_path) as store:
        report = store.generate(
            args.frequency,
            args.symbols or config.synthetic_symbols,
            args.bars or default_bars,
            config.synthetic_seed if args.seed is None else args.seed,
        )
    print(
        f"{report.rows} {args.frequency} bars of {len(report.symbols)} symbols written to {config.db_path} "
        f"({report.replaced} replaced)"
    )
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from ai_trading.data import MarketDataStore

    config = _config(args)
    with MarketDataStore(config.db_path) as store:
        report = store.ingest(args.files, symbol=args.symbol)
    print(
        f"{report.rows} bars of {', '.join(report.symbols) or 'no symbol'} from {len(report.sources)} file(s) written to "
        f"{config.db_path}: {report.inserted} new, {report.replaced} replaced"
    )
    return 0


def _spacing(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _info(args: argparse.Namespace) -> int:
    from ai_trading.data import open_store

    config = _config(args)
    with open_store(config) as store:
        info = store.info()
    print(f"{info.path}: {info.rows} bars, {len(info.symbols)} symbols")
    print(f"{'symbol':<12} {'rows':>9}  {'first':<20} {'last':<20} {'spacing':>8}")
    for s in info.symbols:
        first, last = (t.strftime("%Y-%m-%d %H:%M") for t in (s.first, s.last))
        print(f"{s.symbol:<12} {s.rows:>9}  {first:<20} {last:<20} {_spacing(s.bar_seconds):>8}")
    return 0
