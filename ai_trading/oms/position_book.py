"""Average cost and realized P&L per symbol from the OMS's adopted positions and fills.

The average-cost method brokers report positions with: buying into a long (or selling
into a short) moves the average entry price to the quantity-weighted mean; reducing
realizes ``(price - average) * closed quantity`` (sign by side) and keeps the average;
crossing through flat realizes the old position and opens the rest at the fill price.
Fees are not part of the cost (they are reported by the fills apart), as brokers'
average entry prices leave commissions out.

An adopted position is the opening lot of its symbol, at the broker's average entry price
when adopted; when the broker gave none the average is unknown (None) until the position
is next flat. Fills apply in the order the OMS recorded them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from ai_trading.oms.adoption import AdoptedPosition
from ai_trading.oms.engine import connect, transaction
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import ZERO, Side
from ai_trading.oms.schema import fills, intents


@dataclass(frozen=True, kw_only=True)
class BookPosition:
    """One symbol of the book.

    :param qty: signed position (fills plus adopted)
    :param avg_cost: average entry price of the open position; None when flat or unknown
    :param realized_pnl: P&L realized by reducing trades so far, fees excluded
    :param adopted_qty: the part of the history adopted from the broker
    """

    symbol: str
    qty: Decimal
    avg_cost: Decimal | None
    realized_pnl: Decimal
    adopted_qty: Decimal

    def unrealized_pnl(self, mark: Decimal) -> Decimal | None:
        """``(mark - avg_cost) * qty``; None when the average cost is unknown."""
        return None if self.avg_cost is None else (mark - self.avg_cost) * self.qty


class PositionBook:
    """Average-cost positions built from opening lots and signed trades; see the module docstring."""

    def __init__(self) -> None:
        self._qty: dict[str, Decimal] = {}
        self._avg: dict[str, Decimal | None] = {}
        self._realized: dict[str, Decimal] = {}
        self._adopted: dict[str, Decimal] = {}

    def adopt(self, symbol: str, qty: Decimal, avg_price: Decimal | None) -> None:
        """An opening lot (an adopted position) at ``avg_price`` (None: unknown)."""
        self._adopted[symbol] = self._adopted.get(symbol, ZERO) + qty
        self.trade(symbol, qty, avg_price)

    def trade(self, symbol: str, signed_qty: Decimal, price: Decimal | None) -> None:
        """Apply one trade: ``signed_qty`` > 0 bought, < 0 sold, at ``price``."""
        held = self._qty.get(symbol, ZERO)
        avg = self._avg.get(symbol)
        realized = self._realized.get(symbol, ZERO)
        after = held + signed_qty
        if held == 0 or (held > 0) == (signed_qty > 0):
            if price is None or (held != 0 and avg is None):
                avg = None
            else:
                avg = ((avg or ZERO) * held + price * signed_qty) / after
        else:
            closed = min(abs(signed_qty), abs(held))
            if avg is not None and price is not None:
                realized += (price - avg) * closed * (1 if held > 0 else -1)
            if after == 0:
                avg = None
            elif (after > 0) != (held > 0):
                avg = price
        self._qty[symbol] = after
        self._avg[symbol] = avg if after != 0 else None
        self._realized[symbol] = realized

    def positions(self) -> list[BookPosition]:
        """Every symbol ever traded or adopted, sorted (flat ones keep their realized P&L)."""
        return [
            BookPosition(
                symbol=symbol,
                qty=qty,
                avg_cost=self._avg.get(symbol),
                realized_pnl=self._realized.get(symbol, ZERO),
                adopted_qty=self._adopted.get(symbol, ZERO),
            )
            for symbol, qty in sorted(self._qty.items())
        ]


def read_book(store: IntentStore, adopted: Iterable[AdoptedPosition]) -> PositionBook:
    """The book of ``adopted`` positions followed by every fill the OMS recorded, in order."""
    book = PositionBook()
    for position in adopted:
        book.adopt(position.symbol, position.qty, position.avg_price)
    query = (
        select(intents.c.symbol, intents.c.side, fills.c.qty, fills.c.price)
        .join(intents, fills.c.intent_id == intents.c.id)
        .order_by(fills.c.id)
    )
    with connect(store.engine) as connection, transaction(connection):
        rows = list(connection.execute(query))
    for symbol, side, qty, price in rows:
        book.trade(symbol, Side(side).sign * qty, price)
    return book
