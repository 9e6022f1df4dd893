"""``ai-trading data``: fill the market-data store and look inside it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from ai_trading.commands import add_config_option, split_list
from ai_trading.config import DataConfig, load_config

FREQUENCY_CHOICES = ("daily", "1min")  # ai_trading.data.synthetic.FREQUENCIES, kept import-free
FETCH_SOURCES = ("alpaca",)
ADJUSTMENT_CHOICES = ("raw", "split", "dividend", "all")  # ai_trading.data.alpaca_bars.ADJUSTMENTS, kept import-free
FEED_CHOICES = ("iex", "sip")  # ai_trading.data.alpaca_bars.FEEDS, kept import-free


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
        description="Reads yfinance (one- or three-row header), Alpaca or lowercase column spellings, plain or "
        "compressed (.csv.gz). A file without a symbol column holds --symbol, else the symbol its name spells "
        "(SPY.csv -> SPY). Daily bars are keyed by their exchange session date ([data] exchange_tz), intraday bars "
        "by the UTC instant they start. Every file is validated first; if any is bad, or two files hold the same "
        "bars, nothing is written. Bars already stored with the same values are skipped; stored bars with other "
        "values are refused with the differences unless --replace is given.",
    )
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument("--symbol", help="symbol of files without a symbol column (default: from the file name)")
    ingest.add_argument("--frequency", help="bar frequency, e.g. 1d or 1min (default: inferred from the bars' spacing)")
    ingest.add_argument("--replace", action="store_true", help="overwrite stored bars whose values differ")
    ingest.set_defaults(handler=_ingest)

    migrate = actions.add_parser(
        "migrate",
        parents=[common],
        help="convert a store written by an older version to the current layout",
        description="Gives every bar its frequency (inferred per symbol from its spacing) and re-keys daily bars by "
        "their exchange session date, in one transaction; two bars of a symbol on one session stop it with nothing "
        "changed. Running it again does nothing.",
    )
    migrate.set_defaults(handler=_migrate)

    info = actions.add_parser(
        "info", parents=[common], help="symbols, frequencies, rows, date range and bar spacing (changes nothing)"
    )
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(handler=_info)

    fetch = actions.add_parser(
        "fetch",
        parents=[common],
        help="download bars from a broker's market-data API into the store",
        description="Fetches historical bars (Alpaca Market Data API v2; key and secret from APCA_API_KEY_ID and "
        "APCA_API_SECRET_KEY or [alpaca], host from APCA_API_DATA_URL or [alpaca] data_url) and writes them "
        "through the same validation and bar-time convention as ingest. Incremental: each symbol is requested "
        "from the bar after its last stored one, so running the same command again appends only new bars. "
        "Nothing is written unless every page arrived and every bar passed validation.",
    )
    fetch.add_argument("--source", choices=FETCH_SOURCES, required=True, help="market-data API")
    fetch.add_argument("--symbols", required=True, help="comma-separated symbols (SPY,QQQ)")
    fetch.add_argument("--start", required=True, type=_instant, help="first bar, inclusive (ISO date or time; no zone = UTC)")
    fetch.add_argument("--end", type=_instant, help="end, exclusive (ISO date or time; default: now)")
    fetch.add_argument("--timeframe", default="1Day", help="1Day (default), 1Min, or another Alpaca timeframe (5Min, 1Hour)")
    fetch.add_argument("--adjustment", choices=ADJUSTMENT_CHOICES, default="raw", help="corporate-action adjustment (default: raw)")
    fetch.add_argument("--feed", choices=FEED_CHOICES, help="iex (free) or sip (subscription); default: the account's")
    fetch.add_argument(
        "--replace",
        action="store_true",
        help="fetch the whole range again and overwrite stored bars whose values differ (otherwise refused)",
    )
    fetch.add_argument("--json", action="store_true", help="print the report as JSON")
    fetch.set_defaults(handler=_fetch)


def _config(args: argparse.Namespace) -> DataConfig:
    config = load_config(args.config).data
    return config if args.db is None else replace(config, db_path=args.db)


def _generate(args: argparse.Namespace) -> int:
    from ai_trading.data import DAILY, MarketDataStore

    config = _config(args)
    default_bars = config.synthetic_daily_bars if args.frequency == DAILY else config.synthetic_minute_bars
    with MarketDataStore(config.db_path, exchange_tz=config.exchange_tz) as store:
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
    with MarketDataStore(config.db_path, exchange_tz=config.exchange_tz) as store:
        report = store.ingest(args.files, symbol=args.symbol, frequency=args.frequency, replace=args.replace)
    print(
        f"{report.rows} bars of {', '.join(report.symbols)} from {len(report.sources)} file(s) written to "
        f"{config.db_path}: {report.inserted} new, {report.unchanged} already stored, {report.replaced} replaced"
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from ai_trading.data.layout_migration import migrate_layout

    config = _config(args)
    result = migrate_layout(config.db_path, config.exchange_tz)
    if not result.changed:
        print(f"{config.db_path} already has the current layout: nothing to do")
        return 0
    daily = sum(1 for frequency in result.frequencies.values() if frequency == "1d")
    print(
        f"{config.db_path} converted: {len(result.frequencies)} symbols ({daily} daily), "
        f"{result.rekeyed} daily bars re-keyed to their session date"
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
    from ai_trading.data import MarketDataStore
    from ai_trading.errors import DataStoreError

    config = _config(args)
    if not config.db_path.exists():
        raise DataStoreError(
            f"no market-data store at {config.db_path}: `ai-trading data generate` or `ai-trading data ingest FILE` "
            "creates one (`ai-trading sim` writes the built-in set into the default store on first use)"
        )
    with MarketDataStore(config.db_path, read_only=True, exchange_tz=config.exchange_tz) as store:
        info = store.info()
    if args.json:
        rows = [{**asdict(s), "first": s.first.isoformat(), "last": s.last.isoformat()} for s in info.symbols]
        print(json.dumps({"path": str(info.path), "rows": info.rows, "series": rows}, indent=2))
        return 0
    print(f"{info.path}: {info.rows} bars, {len({s.symbol for s in info.symbols})} symbols")
    print(f"{'symbol':<12} {'frequency':<9} {'rows':>9}  {'first':<20} {'last':<20} {'spacing':>8}")
    for s in info.symbols:
        shown = "%Y-%m-%d" if s.frequency == "1d" else "%Y-%m-%d %H:%M"
        first, last = (t.strftime(shown) for t in (s.first, s.last))
        print(f"{s.symbol:<12} {s.frequency:<9} {s.rows:>9}  {first:<20} {last:<20} {_spacing(s.bar_seconds):>8}")
    return 0


def _instant(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date or date-time: {text!r}") from exc


def _fetch(args: argparse.Namespace) -> int:
    from ai_trading.data import MarketDataStore
    from ai_trading.data.alpaca_bars import AlpacaBarsClient, PageProgress, fetch_bars

    config = _config(args)
    alpaca = load_config(args.config).alpaca

    def progress(page: PageProgress) -> None:
        print(f"page {page.page}: {page.rows} bars of {','.join(page.symbols)}", file=sys.stderr, flush=True)

    with AlpacaBarsClient(alpaca) as client, MarketDataStore(config.db_path, exchange_tz=config.exchange_tz) as store:
        report = fetch_bars(
            store,
            client,
            split_list(args.symbols) or [],
            args.timeframe,
            args.start,
            args.end or datetime.now(UTC),
            adjustment=args.adjustment,
            feed=args.feed,
            replace=args.replace,
            on_page=progress if sys.stderr.isatty() else None,
        )
    if args.json:
        print(json.dumps(asdict(report), default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v), indent=2))
        return 0
    for symbol in report.symbols:
        print(f"{symbol.symbol:<12} {symbol.rows:>9} bars from {symbol.requested_from:%Y-%m-%d %H:%M}Z")
    forming = f", {report.forming} still forming (not written)" if report.forming else ""
    print(
        f"{report.rows} {report.frequency} bars in {report.pages} page(s) from {report.source}: {report.new} new, "
        f"{report.present} already present{forming}; written to {report.path}"
    )
    return 0
