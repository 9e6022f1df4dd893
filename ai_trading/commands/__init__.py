"""Subcommand groups of the ``ai-trading`` CLI; each module has ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import math
from pathlib import Path
from types import ModuleType

# One entry per subcommand module, in the order `ai-trading --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "sim", "db", "keys", "manifest", "walkforward", "data", "oms", "govern", "train", "registry",
)  # fmt: skip


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in COMMAND_MODULES]


def formatted(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec`` for a summary; "n/a" where there is no number (None,
    or NaN: a rate over no orders, a Sharpe ratio of a flat series)."""
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


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
    add_config_option(parser)
    parser.add_argument("--seed", type=int, help="simulator seed (default: execution.seed)")


def expected_schema_hash(given: str | None) -> str:
    """The feature schema hash a loaded model must carry: ``--feature-schema-hash``, else
    the current builder's default spec (imported only when needed: it loads Numba)."""
    if given:
        return given
    from ai_trading.features import FeatureBuilder

    return FeatureBuilder().feature_schema_hash
