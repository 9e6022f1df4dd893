"""The durable trading state of each account: what the kill switch sets, what every sender reads.

One row per account in ``trading_state`` (no row: ``ACTIVE``, never set) and one row per
change in the append-only ``trading_state_audit``, written in the same transaction, so
the audit can never miss a change. The state lives in the OMS database, so every process
trading the account sees a change at its next read: the engine's pre-trade check and the
order manager, immediately before each send, both read it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import IntegrityError

from ai_trading.errors import ConcurrencyConflict, ConfigError
from ai_trading.oms.engine import connect, transaction
from ai_trading.oms.models import TradingState, TradingStateRecord, utc_now
from ai_trading.oms.schema import trading_state, trading_state_audit

logger = logging.getLogger(__name__)

SELECT_STATE = select(trading_state).where(trading_state.c.account == bindparam("account"))
NEVER_SET_REASON = "never set: accounts trade until a state is set"


def _record(row: Any) -> TradingStateRecord:
    return TradingStateRecord(
        account=row.account,
        state=TradingState(row.state),
        reason=row.reason,
        changed_by=row.changed_by,
        changed_at=row.changed_at,
        version=row.version,
    )


class TradingStateStore:
    """Reads and sets accounts' trading states, auditing every change.

    :param engine: engine of the OMS database at the head revision (an
        :class:`~ai_trading.oms.intent_store.IntentStore`'s ``engine``)
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, account: str) -> TradingStateRecord:
        """The account's state as stored now (``ACTIVE`` at version 0 when never set)."""
        with connect(self._engine) as connection, transaction(connection):
            row = connection.execute(SELECT_STATE, {"account": account}).first()
        if row is None:
            return TradingStateRecord(
                account=account, state=TradingState.ACTIVE, reason=NEVER_SET_REASON, changed_by="", changed_at=None, version=0
            )
        return _record(row)

    def set(self, account: str, state: TradingState | str, *, reason: str, changed_by: str) -> TradingStateRecord:
        """Set the account's state (also to the state it already has: the audit records
        every deliberate decision); returns the stored record."""
        try:
            target = TradingState(state)
        except ValueError as exc:
            choices = ", ".join(member.value for member in TradingState)
            raise ConfigError(f"trading state must be one of {choices}, got {state!r}") from exc
        if not account or not reason.strip() or not changed_by.strip():
            raise ConfigError("setting a trading state needs an account, a reason and who sets it (changed_by)")
        now = utc_now()
        with connect(self._engine) as connection, transaction(connection):
            row = connection.execute(SELECT_STATE, {"account": account}).first()
            values = {"state": target.value, "reason": reason, "changed_by": changed_by, "changed_at": now}
            if row is None:
                version, before = 1, None
                try:
                    connection.execute(trading_state.insert(), {"account": account, "version": version, **values})
                except IntegrityError as exc:
                    raise ConcurrencyConflict(f"trading state of {account} was set concurrently: set it again") from exc
            else:
                version, before = row.version + 1, row.state
                # The version guard makes two concurrent setters serialise instead of losing an audit row.
                updated = connection.execute(
                    trading_state.update()
                    .where(trading_state.c.account == account, trading_state.c.version == row.version)
                    .values(version=version, **values)
                ).rowcount
                if updated != 1:
                    raise ConcurrencyConflict(f"trading state of {account} changed while it was being set: set it again")
            connection.execute(
                trading_state_audit.insert(),
                {"account": account, "from_state": before, "to_state": target.value, "reason": reason,
                 "changed_by": changed_by, "changed_at": now, "version": version},
            )  # fmt: skip
        logger.warning(
            "OMS_TRADING_STATE_SET",
            extra={"account": account, "from_state": before, "to_state": target.value, "reason": reason, "changed_by": changed_by},
        )
        return TradingStateRecord(account=account, state=target, reason=reason, changed_by=changed_by, changed_at=now, version=version)

    def audit(self, account: str) -> list[TradingStateRecord]:
        """Every change of the account's state, oldest first."""
        query = (
            select(
                trading_state_audit.c.account,
                trading_state_audit.c.to_state.label("state"),
                trading_state_audit.c.reason,
                trading_state_audit.c.changed_by,
                trading_state_audit.c.changed_at,
                trading_state_audit.c.version,
            )
            .where(trading_state_audit.c.account == account)
            .order_by(trading_state_audit.c.id)
        )
        with connect(self._engine) as connection, transaction(connection):
            return [_record(row) for row in connection.execute(query)]
