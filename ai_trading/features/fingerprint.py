"""Dataset fingerprint: SHA-256 of the exact bars a feature set was computed from."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from numpy.typing import NDArray

from ai_trading.types import MarketPanel

FINGERPRINT_FORMAT = "ai-trading/dataset-fingerprint/v1"
_PRICE_FIELDS = ("open", "high", "low", "close", "volume")
# One NaN bit pattern for every NaN, so payload bits a source happens to carry do not count.
_CANONICAL_NAN = np.float64(np.nan)


def _canonical_column(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Little-endian float64 with every NaN identical and -0.0 written as 0.0."""
    out = np.where(np.isnan(values), _CANONICAL_NAN, values + 0.0)
    return np.ascontiguousarray(out, dtype="<f8")


def dataset_fingerprint(panel: MarketPanel) -> str:
    """SHA-256 (hex) over symbols, timestamps and every field, symbols in sorted order.

    The same bars give the same fingerprint whatever order the symbols arrived in;
    changing any single value (price, volume, validity, spread, timestamp, symbol)
    changes it. The header names the fields present, so a panel with a spread column of
    NaN differs from one without a spread column.
    """
    order = np.argsort(np.asarray(panel.symbols, dtype=object), kind="stable")
    fields = [*_PRICE_FIELDS, "valid"] + (["spread_bps"] if panel.spread_bps is not None else [])
    header = {
        "format": FINGERPRINT_FORMAT,
        "n_bars": panel.n_bars,
        "symbols": [panel.symbols[i] for i in order],
        "fields": fields,
    }
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    digest.update(np.ascontiguousarray(panel.ts, dtype="<i8").data)
    in_order = bool(np.all(order == np.arange(order.size)))
    for name in fields:
        column = getattr(panel, name)
        if not in_order:
            column = column[:, order]
        if name == "valid":
            digest.update(np.ascontiguousarray(column, dtype=np.uint8).data)
        else:
            digest.update(_canonical_column(column).data)
    return digest.hexdigest()
