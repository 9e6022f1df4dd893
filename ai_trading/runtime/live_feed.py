"""A real-time loop's bars: what Alpaca's market-data API published since the last stored bar.

:class:`AlpacaBarFeed` asks :class:`~ai_trading.data.alpaca_bars.AlpacaBarsClient` for each
symbol's bars after its last stored one (incremental; a symbol with none starts at
``history_start``) up to the end of the bar the clock is at, and hands them to the loop,
which appends them through the store's validated ``write_source``. The clock asks only
for a bar that has closed and the request ends where that bar ends, so a bar still forming
is never requested, let alone written:

- a daily bar ends at the next local midnight of the exchange (Alpaca stamps a daily
  bar at the local midnight that starts its session);
- an intraday bar ends one bar length after its start (Alpaca's ``end`` is inclusive,
  the client drops bars at ``end``).

The wall clock asks :meth:`AlpacaBarFeed.available` which symbols already have a bar; the
answer is kept, so the loop's :meth:`new_bars` that follows costs no second request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from ai_trading.brokers.sim_market import utc_datetime, utc_ns
from ai_trading.data.alpaca_bars import RAW_SCHEMA, AlpacaBarsClient, request_groups, request_starts
from ai_trading.data.bartime import check_time_zone, session_dates
from ai_trading.data.frequency import DAILY, bar_seconds, parse_frequency
from ai_trading.data.schema import TS_TYPE
from ai_trading.data.store import MarketDataStore

logger = logging.getLogger(__name__)


class AlpacaBarFeed:
    """New bars of ``symbols`` from Alpaca's Market Data API v2.

    :param client: the market-data client (its retries cover 429, 5xx and timeouts)
    :param store: the store the loop appends to (read here for each symbol's last bar)
    :param symbols: the loop's universe
    :param frequency: the bars' frequency
    :param exchange_tz: the exchange's zone (``[data] exchange_tz``)
    :param history_start: where a symbol without stored bars starts
    :param adjustment: Alpaca's price adjustment (``raw`` keeps stored bars stable)
    :param feed: ``iex`` or ``sip``; None: the account's default
    """

    def __init__(
        self,
        client: AlpacaBarsClient,
        store: MarketDataStore,
        symbols: Sequence[str],
        frequency: str,
        exchange_tz: str,
        history_start: datetime,
        adjustment: str = "raw",
        feed: str | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self.symbols = tuple(symbols)
        self._frequency = parse_frequency(frequency)
        self._zone = ZoneInfo(check_time_zone(exchange_tz))
        self._history_start = history_start
        self._adjustment = adjustment
        self._feed = feed
        self._fetched: tuple[int, pa.Table] | None = None
        self.source = f"alpaca {client.data_url}/v2/stocks/bars (adjustment={adjustment}, feed={feed or 'account default'})"

    def _end(self, through: int) -> datetime:
        """Where the bar ``through`` ends, in Alpaca's stamps (exclusive)."""
        if self._frequency == DAILY:
            day = utc_datetime(through).date() + timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=self._zone)
        return utc_datetime(through + bar_seconds(self._frequency) * 1_000_000_000)

    def _fetch(self, through: int) -> pa.Table:
        end = self._end(through)
        groups = request_groups(request_starts(self._store, self.symbols, self._frequency, self._history_start), end)
        tables = [RAW_SCHEMA.empty_table()]
        for begin, group in groups:
            tables.append(self._client.bars(group, self._frequency, begin, end, self._adjustment, self._feed))
        table = pa.concat_tables(tables)
        logger.info("LIVE_FEED_FETCHED", extra={"through": utc_datetime(through).isoformat(), "rows": table.num_rows, "requests": len(groups)})
        self._fetched = (through, table)
        return table

    def _keys(self, table: pa.Table) -> pa.Array:
        ts = table.column("ts").combine_chunks().cast(TS_TYPE)
        return session_dates(ts, True, self._zone.key) if self._frequency == DAILY else ts

    def available(self, key: int) -> frozenset[str]:
        """The symbols whose bar ``key`` is stored or published now (asks Alpaca again)."""
        table = self._fetch(key)
        stored = self._store.last_bar_times(self.symbols, self._frequency)
        have = {symbol for symbol, last in stored.items() if utc_ns(last) >= key}
        at_key = pc.equal(self._keys(table), pa.scalar(key, TS_TYPE))
        have.update(table.filter(at_key).column("symbol").to_pylist())
        return frozenset(have)

    def new_bars(self, through: int) -> pa.Table | None:
        """The bars published after each symbol's last stored one, up to the bar ``through``."""
        table = self._fetched[1] if self._fetched is not None and self._fetched[0] == through else self._fetch(through)
        self._fetched = None
        return table if table.num_rows else None
