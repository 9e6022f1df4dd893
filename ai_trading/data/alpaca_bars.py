"""Historical bars from Alpaca's Market Data API v2, fetched incrementally into the store.

:class:`AlpacaBarsClient` pages through ``GET /v2/stocks/bars`` (several symbols per
request, ``next_page_token`` until it is null) and returns the bars as Alpaca stamped
them: a raw table that the store's ``write_source`` validates and keys by the bar-time
convention (a daily bar stamped ``2024-01-02T05:00:00Z`` becomes the session of
2 January). :func:`fetch_bars` asks the store for each symbol's last bar of the frequency
and requests only what follows it, so running the same fetch again appends only new bars.

Requests are retried after transport errors, 429 and 5xx (:mod:`ai_trading.http_retry`).
Time ranges are half-open, ``[start, end)``, like every other bar query here (Alpaca's own
``end`` is inclusive; the client drops bars at ``end``). The key and secret travel only in
request headers.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import pyarrow as pa
import pyarrow.compute as pc

from ai_trading.config import AlpacaConfig
from ai_trading.data.frequency import DAILY, bar_seconds, parse_frequency
from ai_trading.data.schema import PRICE_COLUMNS, TS_TYPE
from ai_trading.data.store import MarketDataStore
from ai_trading.errors import ConfigError, DataSourceError, DataValidationError
from ai_trading.http_retry import RetryPolicy, error_message, request_with_retries

logger = logging.getLogger(__name__)

BARS_PATH = "/v2/stocks/bars"
PAGE_LIMIT = 10_000  # the most bars Alpaca returns per page
ADJUSTMENTS: tuple[str, ...] = ("raw", "split", "dividend", "all")
FEEDS: tuple[str, ...] = ("iex", "sip")
SOURCE = "alpaca"
RULE_TIMEFRAME = "Alpaca timeframes are 1Day, 1-59 minutes (1Min, 5Min) or 1-23 hours (1Hour)"
RULE_RANGE = "start must be before end"
RAW_COLUMNS: tuple[str, ...] = ("symbol", "ts", *PRICE_COLUMNS, "volume")
# Alpaca's one-letter bar fields, in the order of RAW_COLUMNS after symbol.
_FIELDS: tuple[str, ...] = ("t", "o", "h", "l", "c", "v")
RAW_SCHEMA = pa.schema(
    [pa.field("symbol", pa.string()), pa.field("ts", TS_TYPE)]
    + [pa.field(name, pa.float64()) for name in (*PRICE_COLUMNS, "volume")]
)


def alpaca_timeframe(frequency: str) -> str:
    """Alpaca's spelling of a frequency (``1d`` -> ``1Day``, ``5min`` -> ``5Min``).

    :raises DataValidationError: for a frequency Alpaca does not serve
    """
    canonical = parse_frequency(frequency)
    if canonical == DAILY:
        return "1Day"
    minutes = bar_seconds(canonical) // 60
    if minutes < 60:
        return f"{minutes}Min"
    if minutes % 60 == 0 and minutes // 60 < 24:
        return f"{minutes // 60}Hour"
    raise DataValidationError(f"timeframe {frequency!r}", None, RULE_TIMEFRAME)


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is read as UTC, like every time
    bound in ai-trading."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    return utc(moment).isoformat().replace("+00:00", "Z")


def _check_range(start: datetime, end: datetime) -> None:
    if utc(start) >= utc(end):
        raise DataValidationError(f"range {_rfc3339(start)} .. {_rfc3339(end)}", None, RULE_RANGE)


def _page_table(payload: Any, what: str) -> pa.Table:
    """The bars of one response page as a raw table (``RAW_SCHEMA``)."""
    if not isinstance(payload, dict) or "bars" not in payload:
        raise DataSourceError(f"{what}: the response holds no 'bars' object")
    by_symbol = payload["bars"] or {}
    if not isinstance(by_symbol, dict):
        raise DataSourceError(f"{what}: 'bars' is not an object of symbol -> bars")
    columns: dict[str, list[Any]] = {name: [] for name in RAW_COLUMNS}
    for symbol, bars in by_symbol.items():
        for index, bar in enumerate(bars or ()):
            missing = [key for key in _FIELDS if key not in bar] if isinstance(bar, dict) else list(_FIELDS)
            if missing:
                raise DataSourceError(f"{what}: bar {index + 1} of {symbol} lacks {', '.join(missing)}")
            columns["symbol"].append(symbol)
            for name, key in zip(RAW_COLUMNS[1:], _FIELDS, strict=True):
                columns[name].append(bar[key])
    try:
        ts = pa.array(columns.pop("ts"), pa.string()).cast(TS_TYPE)
        values = {name: pa.array(data, pa.float64()) for name, data in columns.items() if name != "symbol"}
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataValidationError(what, None, "bars must have RFC-3339 times and numeric o/h/l/c/v", str(exc)) from exc
    return pa.Table.from_arrays(
        [pa.array(columns["symbol"], pa.string()), ts, *(values[name] for name in RAW_COLUMNS[2:])], schema=RAW_SCHEMA
    )


class AlpacaBarsClient:
    """Historical stock bars from Alpaca's Market Data API v2.

    :param config: ``data_url``, credentials, timeout and retry policy (see
        ``AlpacaConfig``; credentials come from ``APCA_API_KEY_ID`` and
        ``APCA_API_SECRET_KEY``, the host from ``APCA_API_DATA_URL``)
    """

    def __init__(self, config: AlpacaConfig) -> None:
        if not config.key_id or not config.secret_key:
            raise ConfigError("Alpaca credentials missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        self._policy = RetryPolicy(config.max_retries, config.retry_backoff_s)
        self.data_url = config.data_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.data_url,
            timeout=httpx.Timeout(config.timeout_s),
            headers={"APCA-API-KEY-ID": config.key_id, "APCA-API-SECRET-KEY": config.secret_key},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _get_page(self, params: dict[str, Any]) -> Any:
        response = request_with_retries(
            self._client,
            "GET",
            BARS_PATH,
            params=params,
            policy=self._policy,
            error=DataSourceError,
            service="Alpaca market data",
            event="ALPACA_DATA_REQUEST_RETRY",
        )
        status = response.status_code
        if status in (401, 403):
            raise DataSourceError(
                f"Alpaca market data refused the request (HTTP {status}: {error_message(response)}): set "
                "APCA_API_KEY_ID and APCA_API_SECRET_KEY (or [alpaca] key_id/secret_key) to a key allowed to read "
                "this data; SIP data needs a subscription, --feed iex does not"
            )
        if status >= 400:
            raise DataSourceError(f"Alpaca market data refused the bars request: HTTP {status}: {error_message(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise DataSourceError(f"Alpaca market data answered HTTP {status} with a body that is not JSON") from exc

    def pages(
        self,
        symbols: Sequence[str],
        timeframe: str,
        start: datetime,
        end: datetime,
        adjustment: str = "raw",
        feed: str | None = None,
    ) -> Iterator[pa.Table]:
        """The bars of ``symbols`` in ``[start, end)``, one raw table per response page.

        :param timeframe: any spelling :func:`~ai_trading.data.frequency.parse_frequency`
            reads that Alpaca serves (``1Day``, ``1Min``, ``1d``)
        :param adjustment: ``raw``, ``split``, ``dividend`` or ``all``
        :param feed: ``iex`` or ``sip``; None lets Alpaca pick the account's default
        """
        if not symbols:
            return
        _check_range(start, end)
        if adjustment not in ADJUSTMENTS:
            raise DataValidationError(f"adjustment {adjustment!r}", None, f"one of {', '.join(ADJUSTMENTS)}")
        if feed is not None and feed not in FEEDS:
            raise DataValidationError(f"feed {feed!r}", None, f"one of {', '.join(FEEDS)}")
        params: dict[str, Any] = {
            "symbols": ",".join(symbols),
            "timeframe": alpaca_timeframe(timeframe),
            "start": _rfc3339(start),
            "end": _rfc3339(end),
            "limit": PAGE_LIMIT,
            "adjustment": adjustment,
        }
        if feed is not None:
            params["feed"] = feed
        end_ns = pa.scalar(utc(end), TS_TYPE)
        seen_tokens: set[str] = set()
        number = 0
        while True:
            number += 1
            payload = self._get_page(params)
            table = _page_table(payload, f"Alpaca bars page {number} ({params['symbols']})")
            logger.debug("ALPACA_BARS_PAGE", extra={"page": number, "rows": table.num_rows, "symbols": params["symbols"]})
            yield table.filter(pc.less(table.column("ts"), end_ns))
            token = payload.get("next_page_token")
            if not token:
                return
            if token in seen_tokens:
                raise DataSourceError(f"Alpaca market data repeated next_page_token {token!r}: paging would not end")
            seen_tokens.add(token)
            params["page_token"] = token

    def bars(
        self,
        symbols: Sequence[str],
        timeframe: str,
        start: datetime,
        end: datetime,
        adjustment: str = "raw",
        feed: str | None = None,
    ) -> pa.Table:
        """Every page of :meth:`pages` in one raw table: ``symbol``, ``ts`` (the instant
        Alpaca stamped, timestamp[ns, UTC]), open, high, low, close, volume."""
        return pa.concat_tables([RAW_SCHEMA.empty_table(), *self.pages(symbols, timeframe, start, end, adjustment, feed)])


@dataclass(frozen=True)
class PageProgress:
    """One page received: what a progress line shows."""

    page: int
    rows: int
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class SymbolFetch:
    """One symbol's part of a fetch: the instant its request started, and the bars received."""

    symbol: str
    requested_from: datetime
    rows: int


@dataclass(frozen=True)
class FetchReport:
    """What :func:`fetch_bars` did.

    :param symbols: per requested symbol, in request order
    :param pages: response pages received
    :param rows: bars written (received minus still-forming ones)
    :param new: bars the store did not hold before
    :param present: bars it already held with the same values (or replaced, with ``replace``)
    :param forming: bars dropped because their period had not ended at ``now``
    """

    source: str
    frequency: str
    path: Path
    symbols: tuple[SymbolFetch, ...]
    pages: int
    rows: int
    new: int
    present: int
    forming: int


def request_starts(
    store: MarketDataStore, symbols: Sequence[str], frequency: str, start: datetime, incremental: bool = True
) -> dict[str, datetime]:
    """Where each symbol's request starts: ``start``, or (``incremental``) the bar after
    its last stored bar when that is later.

    A daily bar is stored at its session date's 00:00 UTC and an intraday bar at its
    start, so the next bar of either begins one bar length after the last key.
    """
    begin = utc(start)
    last = store.last_bar_times(symbols, frequency) if incremental else {}
    step = timedelta(seconds=bar_seconds(frequency))
    return {symbol: max(begin, utc(last[symbol]) + step) if symbol in last else begin for symbol in symbols}


def request_groups(starts: dict[str, datetime], end: datetime) -> list[tuple[datetime, list[str]]]:
    """One request per start (symbols that start together share it), earliest first;
    symbols with nothing before ``end`` are left out."""
    groups: dict[datetime, list[str]] = {}
    for symbol, first in starts.items():
        if first < end:
            groups.setdefault(first, []).append(symbol)
    return sorted(groups.items())


def fetch_bars(
    store: MarketDataStore,
    client: AlpacaBarsClient,
    symbols: Sequence[str],
    timeframe: str,
    start: datetime,
    end: datetime,
    *,
    adjustment: str = "raw",
    feed: str | None = None,
    replace: bool = False,
    now: datetime | None = None,
    on_page: Callable[[PageProgress], None] | None = None,
) -> FetchReport:
    """Fetch the bars the store lacks and write them in one validated transaction.

    Each symbol is requested from the bar after its last stored bar of this frequency (or
    from ``start`` when it has none); symbols that start at the same instant share one
    multi-symbol request. Every page is received before anything is written, so a failed
    request leaves the store as it was. Bars still forming at ``now`` (a daily bar before
    its day is over) are not written: the next fetch gets them complete.

    :param replace: fetch all of ``[start, end)`` again and overwrite stored bars whose
        values differ (without it, such a difference is refused by the store)
    :param now: the current time (default: the clock); bars ending after it are dropped
    :param on_page: called after every page (progress display)
    :raises DataSourceError: a request failed after its retries, or Alpaca refused it
    :raises DataValidationError: a bar breaks an ingest rule; nothing is written
    """
    if not symbols or len(set(symbols)) != len(symbols):
        raise DataValidationError("symbols argument", None, "name one or more symbols, each once")
    _check_range(start, end)
    frequency = parse_frequency(timeframe)
    alpaca_timeframe(frequency)  # refuse a timeframe Alpaca does not serve before asking the store
    stop = utc(end)
    moment = utc(now or datetime.now(UTC))
    tables = [RAW_SCHEMA.empty_table()]
    pages = 0
    starts = request_starts(store, symbols, frequency, start, incremental=not replace)
    for begin, group in request_groups(starts, stop):
        for table in client.pages(group, frequency, begin, stop, adjustment, feed):
            pages += 1
            tables.append(table)
            if on_page is not None:
                on_page(PageProgress(pages, table.num_rows, tuple(group)))
    received = pa.concat_tables(tables)
    latest_start = pa.scalar(moment - timedelta(seconds=bar_seconds(frequency)), TS_TYPE)
    complete = received.filter(pc.less_equal(received.column("ts"), latest_start))
    counts = Counter(complete.column("symbol").to_pylist())
    source = f"{SOURCE} {client.data_url}{BARS_PATH} (adjustment={adjustment}, feed={feed or 'account default'})"
    new = present = 0
    if complete.num_rows:
        written = store.write_source(complete, source, frequency, replace=replace)
        new, present = written.inserted, complete.num_rows - written.inserted
    report = FetchReport(
        source=source,
        frequency=frequency,
        path=store.path,
        symbols=tuple(SymbolFetch(s, starts[s], counts.get(s, 0)) for s in symbols),
        pages=pages,
        rows=complete.num_rows,
        new=new,
        present=present,
        forming=received.num_rows - complete.num_rows,
    )
    logger.info(
        "DATA_FETCHED",
        extra={
            "source": SOURCE, "frequency": frequency, "pages": pages, "rows": report.rows, "new": new, "path": str(store.path)
        },  # fmt: skip
    )
    return report
