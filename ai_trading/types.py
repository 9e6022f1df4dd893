"""Shared shapes, defined once: the market panel, order batches and fill batches.

All three are struct-of-arrays records of NumPy columns so that kernels can take their
fields directly; Arrow tables appear only at the edges (``to_arrow``/``from_arrow``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from ai_trading.errors import DataValidationError, OrderValidationError, UnknownSymbolError

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

BUY: int = 1
SELL: int = -1
MARKET: int = 0
LIMIT: int = 1

NS_PER_SECOND = 1_000_000_000


def _as_2d(name: str, array: Any, shape: tuple[int, int], dtype: type) -> NDArray[Any]:
    out = np.ascontiguousarray(array, dtype=dtype)
    if out.shape != shape:
        raise DataValidationError("MarketPanel", None, f"{name} has shape {out.shape}, expected {shape}")
    return out


@dataclass(frozen=True, eq=False)
class MarketPanel:
    """Time-major bars for S symbols over T timestamps.

    :param ts: bar start times, int64 nanoseconds UTC, strictly increasing, shape ``[T]``
    :param symbols: symbol names, shape ``[S]``
    :param open: open prices ``[T, S]`` float64, C-contiguous; NaN where the bar is missing
    :param high: high prices ``[T, S]``
    :param low: low prices ``[T, S]``
    :param close: close prices ``[T, S]``
    :param volume: traded volume in shares ``[T, S]``
    :param valid: True where the bar exists and is tradable ``[T, S]``
    :param spread_bps: quoted spread in bps of mid ``[T, S]``, NaN where unknown; None when
        the source has no spread column (the simulator then models it)
    :param frequency: the bars' frequency (``1d``, ``1min``, ... see
        :mod:`ai_trading.data.frequency`); None when unknown (then inferred from ``ts``)
    """

    ts: IntArray
    symbols: tuple[str, ...]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    valid: BoolArray
    spread_bps: FloatArray | None = None
    frequency: str | None = None

    def __post_init__(self) -> None:
        ts = np.ascontiguousarray(self.ts, dtype=np.int64)
        if ts.ndim != 1:
            raise DataValidationError("MarketPanel", None, "ts must be one-dimensional")
        if ts.size > 1 and not bool(np.all(np.diff(ts) > 0)):
            raise DataValidationError("MarketPanel", None, "ts must be strictly increasing")
        symbols = tuple(str(s) for s in self.symbols)
        if len(set(symbols)) != len(symbols):
            raise DataValidationError("MarketPanel", None, "symbols must be unique")
        shape = (ts.size, len(symbols))
        object.__setattr__(self, "ts", ts)
        object.__setattr__(self, "symbols", symbols)
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, _as_2d(name, getattr(self, name), shape, np.float64))
        object.__setattr__(self, "valid", _as_2d("valid", self.valid, shape, np.bool_))
        if self.spread_bps is not None:
            object.__setattr__(self, "spread_bps", _as_2d("spread_bps", self.spread_bps, shape, np.float64))

    @property
    def n_bars(self) -> int:
        return int(self.ts.size)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def bar_seconds(self) -> float:
        """Typical bar duration (median spacing of ``ts``); 86400 for a single bar."""
        if self.ts.size < 2:
            return 86400.0
        return float(np.median(np.diff(self.ts))) / NS_PER_SECOND

    def symbol_index(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise UnknownSymbolError(
                f"symbol {symbol!r} is not in this panel (it holds {len(self.symbols)} symbols: "
                f"{', '.join(self.symbols[:10])}{', ...' if len(self.symbols) > 10 else ''})"
            ) from None

    def symbol_indices(self, symbols: list[str] | tuple[str, ...]) -> IntArray:
        return np.array([self.symbol_index(s) for s in symbols], dtype=np.int64)


def _table_from_columns(record: Any) -> pa.Table:
    return pa.table({f.name: getattr(record, f.name) for f in fields(record)})


def _columns_from_table(cls: type, table: pa.Table) -> dict[str, NDArray[Any]]:
    missing = [f.name for f in fields(cls) if f.name not in table.column_names]
    if missing:
        raise OrderValidationError(f"{cls.__name__} table lacks columns: {', '.join(missing)}")
    return {f.name: table.column(f.name).to_numpy() for f in fields(cls)}


@dataclass(frozen=True, eq=False)
class OrderBatch:
    """Orders decided at bar ``bar`` (on that bar's close) for the simulator.

    :param order_id: unique id per order; keys the order's random draws
    :param symbol: index into ``MarketPanel.symbols``
    :param bar: decision bar t0; the order reaches the market after it
    :param side: +1 buy, -1 sell
    :param qty: shares, > 0
    :param order_type: 0 market, 1 limit
    :param limit_price: limit price, NaN for market orders
    :param tif_bars: bars the order stays live from its arrival bar (>= 1); the rest is canceled
    """

    order_id: IntArray
    symbol: IntArray
    bar: IntArray
    side: IntArray
    qty: FloatArray
    order_type: IntArray
    limit_price: FloatArray
    tif_bars: IntArray

    def __post_init__(self) -> None:
        dtypes = {"qty": np.float64, "limit_price": np.float64}
        n = None
        for f in fields(self):
            column = np.ascontiguousarray(getattr(self, f.name), dtype=dtypes.get(f.name, np.int64))
            if column.ndim != 1:
                raise OrderValidationError(f"OrderBatch.{f.name} must be one-dimensional")
            if n is None:
                n = column.size
            elif column.size != n:
                raise OrderValidationError(f"OrderBatch.{f.name} has {column.size} rows, expected {n}")
            object.__setattr__(self, f.name, column)

    def __len__(self) -> int:
        return int(self.order_id.size)

    @classmethod
    def market(
        cls,
        order_id: Any,
        symbol: Any,
        bar: Any,
        side: Any,
        qty: Any,
        tif_bars: int | Any,
    ) -> Self:
        """Market orders; ``tif_bars`` may be a scalar applied to every order."""
        n = np.asarray(order_id).size
        return cls(
            order_id=order_id,
            symbol=symbol,
            bar=bar,
            side=side,
            qty=qty,
            order_type=np.full(n, MARKET),
            limit_price=np.full(n, np.nan),
            tif_bars=np.broadcast_to(np.asarray(tif_bars, dtype=np.int64), (n,)),
        )

    def validate(self, n_bars: int, n_symbols: int) -> None:
        """Raise :class:`OrderValidationError` naming the first bad row and the rule."""
        checks: list[tuple[str, BoolArray]] = [
            ("qty must be finite and > 0", ~(np.isfinite(self.qty) & (self.qty > 0))),
            ("side must be +1 (buy) or -1 (sell)", (self.side != BUY) & (self.side != SELL)),
            (f"symbol must index the panel's {n_symbols} symbols", (self.symbol < 0) | (self.symbol >= n_symbols)),
            (f"bar must be in [0, {n_bars})", (self.bar < 0) | (self.bar >= n_bars)),
            ("order_type must be 0 (market) or 1 (limit)", (self.order_type != MARKET) & (self.order_type != LIMIT)),
            (
                "limit orders need a finite limit_price > 0",
                (self.order_type == LIMIT) & ~(np.isfinite(self.limit_price) & (self.limit_price > 0)),
            ),
            ("tif_bars must be >= 1", self.tif_bars < 1),
        ]
        for rule, bad in checks:
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise OrderValidationError(f"order row {row} (order_id {int(self.order_id[row])}): {rule}")
        if np.unique(self.order_id).size != self.order_id.size:
            raise OrderValidationError("order_id values must be unique")

    def to_arrow(self) -> pa.Table:
        return _table_from_columns(self)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Self:
        return cls(**_columns_from_table(cls, table))


@dataclass(frozen=True, eq=False)
class FillBatch:
    """Fill events, simulated or live, in the one shape the cost model learns from.

    :param order_id: the order the fill belongs to
    :param symbol: index into the panel's symbols
    :param bar: bar of the fill
    :param ts: fill time, int64 ns UTC
    :param side: +1 buy, -1 sell
    :param qty: shares filled, > 0
    :param price: execution price
    :param fee: fees charged for this fill, in currency
    :param mid: the mid price the fill is measured against (arrival mid for the first
        slice, the bar's reference price for later slices)
    :param participation: qty / bar volume
    :param sigma_bps: per-bar volatility in bps known when the fill happened
    :param spread_bps: quoted spread in bps at the fill (NaN when unknown)
    """

    order_id: IntArray
    symbol: IntArray
    bar: IntArray
    ts: IntArray
    side: IntArray
    qty: FloatArray
    price: FloatArray
    fee: FloatArray
    mid: FloatArray
    participation: FloatArray
    sigma_bps: FloatArray
    spread_bps: FloatArray

    _INT_FIELDS = frozenset({"order_id", "symbol", "bar", "ts", "side"})

    def __post_init__(self) -> None:
        for f in fields(self):
            dtype = np.int64 if f.name in self._INT_FIELDS else np.float64
            object.__setattr__(self, f.name, np.ascontiguousarray(getattr(self, f.name), dtype=dtype))

    def __len__(self) -> int:
        return int(self.order_id.size)

    @property
    def cost_bps(self) -> FloatArray:
        """Signed execution cost per fill in bps of mid (positive = paid), fees excluded."""
        return self.side * (self.price - self.mid) / self.mid * 1e4

    def to_arrow(self) -> pa.Table:
        return _table_from_columns(self)

    @classmethod
    def from_arrow(cls, table: pa.Table) -> Self:
        return cls(**_columns_from_table(cls, table))
