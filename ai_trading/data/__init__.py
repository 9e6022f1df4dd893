"""Market data: DuckDB store -> Arrow -> MarketPanel; file ingest; the built-in data set."""

from __future__ import annotations

from ai_trading.data.ingest import read_bars
from ai_trading.data.panel import panel_from_arrow, panel_to_arrow
from ai_trading.data.schema import BARS_SCHEMA
from ai_trading.data.store import IngestReport, MarketDataStore, StoreInfo, SymbolInfo, open_store
from ai_trading.data.synthetic import DAILY, FREQUENCIES, MINUTE, generate_bars, generate_panel
from ai_trading.data.validation import validate_bars

__all__ = [
    "BARS_SCHEMA",
    "DAILY",
    "FREQUENCIES",
    "MINUTE",
    "IngestReport",
    "MarketDataStore",
    "StoreInfo",
    "SymbolInfo",
    "generate_bars",
    "generate_panel",
    "open_store",
    "panel_from_arrow",
    "panel_to_arrow",
    "read_bars",
    "validate_bars",
]
