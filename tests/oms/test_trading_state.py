"""TradingStateStore: default ACTIVE, audited changes, shared between processes' stores."""

from __future__ import annotations

import pytest

from ai_trading.errors import ConfigError
from ai_trading.oms.intent_store import IntentStore
from ai_trading.oms.models import TradingState, reduces_exposure
from ai_trading.oms.trading_state import TradingStateStore
from decimal import Decimal

# (before, change, reduces?)
REDUCTIONS = [
    ("10", "-4", True),
    ("10", "-10", True),
    ("10", "-11", False),  # through flat: a new short
    ("10", "2", False),
    ("-10", "3", True),
    ("-10", "-1", False),
    ("0", "1", False),
    ("5", "0", False),
]


@pytest.mark.parametrize(("before", "change", "expected"), REDUCTIONS)
def test_reduces_exposure(before: str, change: str, expected: bool) -> None:
    assert reduces_exposure(Decimal(before), Decimal(change)) is expected


def test_an_account_never_set_is_active(oms_store: IntentStore) -> None:
    record = TradingStateStore(oms_store.engine).get("acct")
    assert (record.state, record.version, record.changed_at) == (TradingState.ACTIVE, 0, None)


def test_every_change_is_stored_and_audited(oms_store: IntentStore) -> None:
    states = TradingStateStore(oms_store.engine)
    states.set("acct", TradingState.HALTED, reason="drawdown alert", changed_by="alert:drawdown")
    states.set("acct", "REDUCING", reason="operator review", changed_by="alice")
    states.set("other", TradingState.HALTED, reason="separate account", changed_by="bob")
    # A second store on the same database (another process) sees the change.
    current = TradingStateStore(oms_store.engine).get("acct")
    assert (current.state, current.version, current.changed_by) == (TradingState.REDUCING, 2, "alice")
    audit = states.audit("acct")
    assert [(a.state, a.reason, a.changed_by, a.version) for a in audit] == [
        (TradingState.HALTED, "drawdown alert", "alert:drawdown", 1),
        (TradingState.REDUCING, "operator review", "alice", 2),
    ]
    assert all(a.changed_at is not None and a.changed_at.tzinfo is not None for a in audit)
    assert states.get("other").state is TradingState.HALTED


@pytest.mark.parametrize(("state", "reason", "who"), [("STOPPED", "r", "w"), ("HALTED", " ", "w"), ("HALTED", "r", "")])
def test_bad_changes_are_refused_and_write_nothing(oms_store: IntentStore, state: str, reason: str, who: str) -> None:
    states = TradingStateStore(oms_store.engine)
    with pytest.raises(ConfigError):
        states.set("acct", state, reason=reason, changed_by=who)
    assert states.get("acct").version == 0 and states.audit("acct") == []
