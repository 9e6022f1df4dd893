"""Subcommand groups of the ``ai-trading`` CLI; each module has ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import math
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ai_trading.config import AppConfig
    from ai_trading.types import MarketPanel

# One entry per subcommand module, in the order `ai-trading --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "sim", "db", "keys", "manifest", "walkforward", "data", "oms", "govern", "train", "registry", "ml", "alerts", "risk", "kill",
    "replay", "paper", "live", "tca",
)  # fmt: skip


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMAND_MODULES]


def formatted(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec`` for a summary; "n/a" where there is no number (None,
    or NaN: a rate over no orders, a Sharpe ratio of a flat series)."""
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def os_user() -> str:
    """Who runs the command, for audit records (``--by`` overrides it where offered)."""
    import getpass

    from ai_trading.errors import ConfigError

    try:
        return getpass.getuser()
    except (OSError, KeyError) as exc:  # no LOGNAME/USER variable and no passwd entry
        raise ConfigError("cannot tell who runs this command (no user name): pass --by NAME") from exc


def split_list(text: str | None) -> list[str] | None:
    """A comma-separated command-line list (``--symbols A,B``); None when not given."""
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def add_config_option(parser: argparse.ArgumentParser, sections: str = "") -> None:
    """``--config FILE``, which every command that reads the configuration takes, spelled
    one way; ``sections`` names the parts of the file the command uses."""
    used = f" ({sections})" if sections else ""
    parser.add_argument("--config", type=Path, metavar="FILE", help=f"TOML configuration file{used}; default: AI_TRADING_CONFIG")


def add_market_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that reads market data takes, spelled one way."""
    parser.add_argument("--symbols", help="comma-separated symbols (default: all in the store)")
    parser.add_argument("--start", help="first bar, inclusive (ISO date or timestamp)")
    parser.add_argument("--end", help="last bar, exclusive (ISO date or timestamp)")
    parser.add_argument("--db", type=Path, help="DuckDB market-data store (default: data.db_path)")
    parser.add_argument("--frequency", help="bar frequency of the panel, e.g. 1d or 1min (default: the one the symbols have)")
    parser.add_argument("--resample", action="store_true", help="build --frequency bars from finer stored bars")
    add_config_option(parser)
    parser.add_argument("--seed", type=int, help="simulator seed (default: execution.seed)")


def market_panel(args: argparse.Namespace, config: AppConfig, symbols: list[str] | None) -> MarketPanel:
    """The panel a market-data command asked for (``add_market_options``). The built-in
    data set fills only the configured store on first use: a ``--db`` path must exist."""
    from ai_trading.data import open_store

    with open_store(config.data, builtin=args.db is None) as store:
        return store.panel(symbols, args.start, args.end, frequency=args.frequency, resample=args.resample)


def expected_schema_hash(given: str | None) -> str:
    """The feature schema hash a loaded model must carry: ``--feature-schema-hash``, else
    the current builder's default spec (imported only when needed: it loads Numba)."""
    if given:
        return given
    from ai_trading.features import FeatureBuilder

    return FeatureBuilder().feature_schema_hash
