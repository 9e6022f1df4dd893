"""The bars a :class:`~ai_trading.brokers.sim.SimBroker` trades on.

A broker is bound to a set of symbols at one frequency from a first bar on; bars may be
appended after its clock (a store being filled by a live feed) without changing what it
already decided. Two markets satisfy :class:`SimMarket`: :class:`PanelMarket` (a panel in
memory: tests, research) and :class:`StoreMarket` (the DuckDB store, re-read when the
clock passes the last bar it has seen).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from ai_trading.data.store import MarketDataStore
from ai_trading.errors import BrokerError
from ai_trading.types import MarketPanel

NS_PER_S = 1_000_000_000


def utc_datetime(ts_ns: int) -> datetime:
    """An int64 ns UTC timestamp as an aware datetime (microsecond resolution)."""
    seconds, nanos = divmod(int(ts_ns), NS_PER_S)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=nanos // 1000)


def utc_ns(when: datetime) -> int:
    """An aware datetime (naive = UTC) as int64 ns UTC."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000


def binding_text(symbols: tuple[str, ...], frequency: str | None, first_ns: int) -> str:
    """What a broker's state is bound to: the symbols, their frequency and the first bar
    (the simulator's volatility estimate starts there, so it must not move)."""
    return f"{','.join(symbols)}|{frequency or '?'}|{first_ns}"


class SimMarket(Protocol):
    """Bars of fixed symbols from a fixed first bar on; later bars may appear over time."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    def binding(self) -> str:
        """:func:`binding_text` of this market."""
        ...

    def panel_through(self, ts_ns: int) -> MarketPanel:
        """Every bar from the first one, including those up to ``ts_ns`` when they exist
        (later ones may be included: the simulator is causal)."""
        ...


class PanelMarket:
    """A fixed panel in memory.

    :param panel: the bars; an empty panel is refused
    """

    def __init__(self, panel: MarketPanel) -> None:
        if panel.n_bars == 0:
            raise BrokerError("the sim broker needs at least one bar to trade on")
        self._panel = panel

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._panel.symbols

    def binding(self) -> str:
        return binding_text(self._panel.symbols, self._panel.frequency, int(self._panel.ts[0]))

    def panel_through(self, ts_ns: int) -> MarketPanel:
        return self._panel


class StoreMarket:
    """Bars of ``symbols`` at ``frequency`` from ``start`` on, read from a market-data store.

    :param store: the store (shared with the process that appends to it)
    :param symbols: the symbols the broker trades
    :param frequency: their bar frequency (``1d``, ``1min``, ...)
    :param start: the first bar (inclusive); None: the first stored bar of the symbols
    """

    def __init__(self, store: MarketDataStore, symbols: tuple[str, ...], frequency: str, start: datetime | None = None) -> None:
        if not symbols:
            raise BrokerError("the sim broker needs at least one symbol to trade")
        self._store = store
        self._symbols = tuple(symbols)
        self._frequency = frequency
        self._start = start
        self._panel: MarketPanel | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def _read(self) -> MarketPanel:
        panel = self._store.panel(self._symbols, self._start, None, frequency=self._frequency)
        if panel.n_bars == 0:
            raise BrokerError(
                f"the store {self._store.path} holds no {self._frequency} bars of {', '.join(self._symbols)}"
                f"{'' if self._start is None else f' from {self._start:%Y-%m-%d %H:%M}'}: ingest them first"
            )
        self._panel = panel
        return panel

    def binding(self) -> str:
        panel = self._panel if self._panel is not None else self._read()
        return binding_text(self._symbols, panel.frequency, int(panel.ts[0]))

    def panel_through(self, ts_ns: int) -> MarketPanel:
        panel = self._panel
        if panel is None or int(panel.ts[-1]) < ts_ns:
            panel = self._read()
        return panel


def parse_binding(text: str) -> tuple[tuple[str, ...], str, datetime]:
    """The symbols, frequency and first bar of a :func:`binding_text`."""
    symbols, frequency, first = text.rsplit("|", 2)
    if not symbols or frequency == "?" or not first.lstrip("-").isdigit():
        raise BrokerError(f"sim broker binding {text[:120]!r} names no symbols, frequency or first bar: use a new broker.sim_db_path")
    return tuple(symbols.split(",")), frequency, utc_datetime(int(first))
