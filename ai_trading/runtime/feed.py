"""Where a loop's new bars come from: a :class:`BarFeed`.

At each bar close the loop asks its feed for the bars it does not have yet and appends
them to the market-data store through the store's validated :meth:`write_source` (the one
bar-time convention, the same conflict rules as every ingest). A replay's bars are the
store's own (:class:`StoredBarFeed`: nothing to append); a paper or live feed returns
what the market-data API published since.
"""

from __future__ import annotations

from typing import Protocol

import pyarrow as pa


class BarFeed(Protocol):
    """New bars for the loop's symbols."""

    @property
    def source(self) -> str:
        """Names the feed in the store's ingest reports and errors."""
        ...

    def new_bars(self, through: int) -> pa.Table | None:
        """Bars up to the bar key ``through`` (int64 ns UTC) not yet in the store, in
        :meth:`~ai_trading.data.store.MarketDataStore.write_source` shape (``symbol``,
        ``ts`` with a zone, open, high, low, close, volume[, spread_bps]); None when the
        store already holds them."""
        ...


class StoredBarFeed:
    """A replay's feed: the bars are already in the store."""

    source = "replay (stored bars)"

    def new_bars(self, through: int) -> pa.Table | None:
        return None
