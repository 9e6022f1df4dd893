"""Positions adopted from the broker: holdings that existed before the OMS traded the account.

The OMS derives its positions from its own fills, so an account funded with holdings (or
one where somebody traded by hand before the OMS took over) would fail reconciliation's
position comparison forever. Adoption records such a holding once, explicitly: per
account and symbol one row in ``adopted_positions`` (unique), every adoption and every
deliberate re-adoption (``replace``) one row in the append-only
``adopted_positions_audit``, written in the same transaction. From then on the OMS
position of a symbol is its fills plus its adopted quantity (:func:`with_adopted`), which
is what reconciliation compares with the broker.

The quantity adopted is what the broker holds beyond the OMS's own fills; a symbol the
OMS has fills or open intents in is refused unless forced (the difference may be an
unrecorded fill, not a holding), and an adopted symbol unless replaced. Every refusal
is checked before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from ai_trading.errors import (
    AdoptionRefused,
    BrokerError,
    ConcurrencyConflict,
    ConfigError,
)
from ai_trading.oms.broker import Broker, BrokerPosition
from ai_trading.oms.engine import connect, transaction
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import ZERO, utc_now
from ai_trading.oms.schema import adopted_positions, adopted_positions_audit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AdoptedPosition:
    """A broker holding the OMS counts as its own.

    :param qty: signed quantity adopted (> 0 long, < 0 short)
    :param avg_price: the broker's average entry price when adopted (None: it gave none)
    :param adopted_by: who adopted it (an operator)
    :param version: +1 on every re-adoption
    """

    account: str
    symbol: str
    qty: Decimal
    avg_price: Decimal | None
    adopted_at: datetime
    adopted_by: str
    reason: str
    version: int


@dataclass(frozen=True, kw_only=True)
class AdoptionAuditRecord:
    """One adoption as audited: what was adopted, what it replaced, what the books said.

    :param action: ``adopt`` (first time) or ``replace`` (a deliberate re-adoption)
    :param previous_qty: the adopted quantity replaced (None for ``adopt``)
    :param broker_qty: the broker's position at adoption
    :param fills_qty: the OMS's position from its own fills at adoption
    :param forced: the OMS had fills or open intents in the symbol and it was adopted anyway
    """

    account: str
    symbol: str
    action: str
    qty: Decimal
    avg_price: Decimal | None
    previous_qty: Decimal | None
    broker_qty: Decimal
    fills_qty: Decimal
    forced: bool
    adopted_by: str
    adopted_at: datetime
    reason: str


@dataclass(frozen=True, kw_only=True)
class AdoptionPlan:
    """What adopting one symbol will write, decided before anything is written."""

    symbol: str
    qty: Decimal
    avg_price: Decimal | None
    broker_qty: Decimal
    fills_qty: Decimal
    previous: AdoptedPosition | None
    forced: bool

    @property
    def action(self) -> str:
        return "adopt" if self.previous is None else "replace"


def with_adopted(fills_positions: Mapping[str, Decimal], adopted: Iterable[AdoptedPosition]) -> dict[str, Decimal]:
    """The OMS position per symbol: its fills plus its adopted quantity (flat symbols left
    out, as brokers leave them out), sorted by symbol."""
    total = dict(fills_positions)
    for position in adopted:
        total[position.symbol] = total.get(position.symbol, ZERO) + position.qty
    return {symbol: qty for symbol, qty in sorted(total.items()) if qty}


def oms_positions(store: IntentStore, account: str) -> dict[str, Decimal]:
    """Fills plus adopted positions of ``account``: what the broker should hold."""
    return with_adopted(store.positions(), AdoptionStore(store.engine).adopted(account).values())


def plan_adoption(
    *,
    broker: Sequence[BrokerPosition],
    fills_positions: Mapping[str, Decimal],
    open_symbols: set[str],
    adopted: Mapping[str, AdoptedPosition],
    symbols: Sequence[str] | None,
    force: bool,
    replace: bool,
) -> list[AdoptionPlan]:
    """The adoptions to write, or :class:`AdoptionRefused` listing every refusal.

    ``symbols`` None selects every symbol where the broker's position differs from the
    OMS's (fills plus adopted). Each is adopted at the broker's quantity minus the OMS's
    fills, refused when already adopted (unless ``replace``), when the OMS has fills or
    open intents in it (unless ``force``), or when there is nothing to adopt.
    """
    held = {position.symbol: position for position in broker}
    if symbols is None:
        books = with_adopted(fills_positions, adopted.values())
        symbols = [s for s in sorted(held) if books.get(s, ZERO) != held[s].qty]
        if not symbols:
            raise AdoptionRefused("nothing to adopt: every broker position equals the OMS's (fills plus adopted)")
    plans: list[AdoptionPlan] = []
    refusals: list[str] = []
    for symbol in symbols:
        position = held.get(symbol)
        broker_qty = ZERO if position is None else position.qty
        fills_qty = fills_positions.get(symbol, ZERO)
        previous = adopted.get(symbol)
        qty = broker_qty - fills_qty
        if previous is not None and not replace:
            refusals.append(
                f"{symbol}: already adopted ({previous.qty} on {previous.adopted_at:%Y-%m-%d %H:%M} UTC by "
                f"{previous.adopted_by}); pass --replace to adopt it again (audited)"
            )
        elif (fills_qty or symbol in open_symbols) and not force:
            refusals.append(
                f"{symbol}: the OMS has fills (position {fills_qty}) or open intents in it, so the broker's "
                f"{broker_qty} is not only holdings from before the OMS; run `ai-trading oms reconcile` first, "
                "and pass --force to adopt the difference anyway (audited)"
            )
        elif qty == 0:
            refusals.append(f"{symbol}: nothing to adopt (broker holds {broker_qty}, the OMS's fills {fills_qty})")
        else:
            avg_price = None if position is None else position.avg_entry_price
            forced = bool(fills_qty) or symbol in open_symbols
            plans.append(AdoptionPlan(symbol=symbol, qty=qty, avg_price=avg_price, broker_qty=broker_qty,
                                      fills_qty=fills_qty, previous=previous, forced=forced))  # fmt: skip
    if refusals:
        raise AdoptionRefused("adoption refused, nothing written:\n  " + "\n  ".join(refusals))
    return plans


def _adopted(row: Any) -> AdoptedPosition:
    return AdoptedPosition(**{column.name: row._mapping[column.name] for column in adopted_positions.c if column.name != "id"})


class AdoptionStore:
    """Reads and writes adopted positions and their audit.

    :param engine: engine of the OMS database at the head revision (an
        :class:`~ai_trading.oms.intent_store.IntentStore`'s ``engine``)
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def adopted(self, account: str) -> dict[str, AdoptedPosition]:
        """The account's adopted positions by symbol."""
        query = select(adopted_positions).where(adopted_positions.c.account == account).order_by(adopted_positions.c.symbol)
        with connect(self._engine) as connection, transaction(connection):
            return {row.symbol: _adopted(row) for row in connection.execute(query)}

    def audit(self, account: str) -> list[AdoptionAuditRecord]:
        """Every adoption of the account, oldest first."""
        columns = [column for column in adopted_positions_audit.c if column.name != "id"]
        query = select(*columns).where(adopted_positions_audit.c.account == account).order_by(adopted_positions_audit.c.id)
        with connect(self._engine) as connection, transaction(connection):
            return [AdoptionAuditRecord(**row._mapping) for row in connection.execute(query)]

    def write(self, account: str, plans: Sequence[AdoptionPlan], *, reason: str, adopted_by: str) -> list[AdoptedPosition]:
        """Write ``plans`` and their audit rows in one transaction; a concurrent adoption of
        the same symbol makes it fail whole (:class:`ConcurrencyConflict`)."""
        if not account or not reason.strip() or not adopted_by.strip():
            raise ConfigError("adopting positions needs an account, a reason (--reason) and who adopts them (--by)")
        now = utc_now()
        written: list[AdoptedPosition] = []
        with connect(self._engine) as connection, transaction(connection):
            for plan in plans:
                version = 1 if plan.previous is None else plan.previous.version + 1
                values = {"qty": plan.qty, "avg_price": plan.avg_price, "adopted_at": now, "adopted_by": adopted_by,
                          "reason": reason, "version": version}  # fmt: skip
                if plan.previous is None:
                    try:
                        connection.execute(adopted_positions.insert(), {"account": account, "symbol": plan.symbol, **values})
                    except IntegrityError as exc:
                        raise ConcurrencyConflict(f"{plan.symbol} was adopted concurrently: nothing written; look again") from exc
                else:
                    updated = connection.execute(
                        adopted_positions.update()
                        .where(
                            adopted_positions.c.account == account,
                            adopted_positions.c.symbol == plan.symbol,
                            adopted_positions.c.version == plan.previous.version,
                        )
                        .values(**values)
                    ).rowcount
                    if updated != 1:
                        raise ConcurrencyConflict(f"{plan.symbol} was re-adopted concurrently: nothing written; look again")
                connection.execute(
                    adopted_positions_audit.insert(),
                    {"account": account, "symbol": plan.symbol, "action": plan.action, "qty": plan.qty,
                     "avg_price": plan.avg_price, "previous_qty": None if plan.previous is None else plan.previous.qty,
                     "broker_qty": plan.broker_qty, "fills_qty": plan.fills_qty, "forced": plan.forced,
                     "adopted_by": adopted_by, "adopted_at": now, "reason": reason},
                )  # fmt: skip
                written.append(AdoptedPosition(account=account, symbol=plan.symbol, **values))
        for plan in plans:
            logger.warning(
                "OMS_POSITION_ADOPTED",
                extra={"account": account, "symbol": plan.symbol, "action": plan.action, "qty": str(plan.qty),
                       "forced": plan.forced, "adopted_by": adopted_by, "reason": reason},
            )  # fmt: skip
        return written


def adopt_positions(
    store: IntentStore,
    broker: Broker,
    account: str,
    *,
    symbols: Sequence[str] | None,
    reason: str,
    adopted_by: str,
    force: bool = False,
    replace: bool = False,
) -> list[AdoptedPosition]:
    """Adopt the broker's holdings of ``symbols`` (None: every position the OMS does not
    account for) into ``account``; see :func:`plan_adoption` for what is refused. A broker
    that cannot be reached refuses the adoption: nothing is adopted from a guess."""
    try:
        broker_positions = broker.positions()
    except BrokerError as exc:
        raise AdoptionRefused(f"the broker could not be asked for its positions, nothing adopted: {exc}") from exc
    adoptions = AdoptionStore(store.engine)
    plans = plan_adoption(
        broker=broker_positions,
        fills_positions=store.positions(),
        open_symbols={intent.symbol for intent in store.open_intents()},
        adopted=adoptions.adopted(account),
        symbols=symbols,
        force=force,
        replace=replace,
    )
    return adoptions.write(account, plans, reason=reason, adopted_by=adopted_by)
