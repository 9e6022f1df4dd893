"""The intent transition table and the validation of intents and fills."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ai_trading.errors import IllegalTransition, OrderValidationError, OverfillError
from ai_trading.oms.models import (
    FILL_DRIVEN,
    FINAL_STATES,
    TRANSITIONS,
    Fill,
    IntentState,
    OrderIntent,
    check_transition,
    state_after_fill,
)

S = IntentState
# The documented table, written out pair by pair as the reference the code must match.
EXPECTED_ALLOWED: frozenset[tuple[IntentState, IntentState]] = frozenset(
    {
        (S.CREATED, S.SUBMITTED),
        (S.CREATED, S.CANCELED),
        (S.CREATED, S.REJECTED),
        (S.SUBMITTED, S.ACKED),
        (S.SUBMITTED, S.PARTIAL_FILLED),
        (S.SUBMITTED, S.FILLED),
        (S.SUBMITTED, S.CANCELED),
        (S.SUBMITTED, S.REJECTED),
        (S.ACKED, S.PARTIAL_FILLED),
        (S.ACKED, S.FILLED),
        (S.ACKED, S.CANCELED),
        (S.ACKED, S.REJECTED),
        (S.PARTIAL_FILLED, S.PARTIAL_FILLED),
        (S.PARTIAL_FILLED, S.FILLED),
        (S.PARTIAL_FILLED, S.CANCELED),
        (S.CANCELED, S.CANCELED),
        (S.CANCELED, S.FILLED),
    }
)
ALL_PAIRS = list(itertools.product(IntentState, IntentState))
NOW = datetime(2024, 1, 5, 15, 30, tzinfo=UTC)
BAD_INTENT_FIELDS = [
    {"qty": Decimal(0)},
    {"qty": Decimal("-1")},
    {"qty": Decimal("NaN")},
    {"side": "short"},
    {"order_type": "stop"},
    {"time_in_force": "forever"},
    {"order_type": "limit"},  # without a limit price
    {"limit_price": Decimal("10")},  # on a market order
    {"symbol": ""},
    {"now": datetime(2024, 1, 5, 15, 30)},  # naive
]


@pytest.mark.parametrize(("src", "dst"), ALL_PAIRS)
def test_transition_table_matches_the_documented_rules(src: IntentState, dst: IntentState) -> None:
    if (src, dst) in EXPECTED_ALLOWED:
        check_transition(src, dst)
    else:
        with pytest.raises(IllegalTransition, match=f"{src} -> {dst}"):
            check_transition(src, dst)


def test_final_states_have_no_way_out_except_late_fills() -> None:
    assert FINAL_STATES == {S.FILLED, S.CANCELED, S.REJECTED}
    for state in FINAL_STATES:
        assert all((state, dst) in FILL_DRIVEN for dst in TRANSITIONS[state])
    assert not TRANSITIONS[S.FILLED] and not TRANSITIONS[S.REJECTED]


@pytest.mark.parametrize("state", [S.SUBMITTED, S.ACKED, S.PARTIAL_FILLED, S.CANCELED])
def test_cumulative_fill_drives_the_state(state: IntentState) -> None:
    open_state = S.CANCELED if state is S.CANCELED else S.PARTIAL_FILLED
    assert state_after_fill(state, Decimal("3"), Decimal("10")) is open_state
    assert state_after_fill(state, Decimal("10"), Decimal("10")) is S.FILLED
    with pytest.raises(OverfillError):
        state_after_fill(state, Decimal("10.000001"), Decimal("10"))


@pytest.mark.parametrize("state", [S.CREATED, S.FILLED, S.REJECTED])
def test_states_that_take_no_fills(state: IntentState) -> None:
    with pytest.raises(IllegalTransition):
        state_after_fill(state, Decimal("1"), Decimal("10"))


def _new(**overrides: object) -> OrderIntent:
    fields: dict[str, object] = {
        "client_order_id": "cid-1",
        "strategy": "mom",
        "symbol": "AAPL",
        "side": "buy",
        "qty": Decimal("10"),
        "now": NOW,
    }
    fields.update(overrides)
    return OrderIntent.new(**fields)  # type: ignore[arg-type]


def test_new_intent_is_created_version_one() -> None:
    intent = _new(order_type="limit", limit_price=Decimal("187.25"))
    assert (intent.state, intent.version, intent.attempts, intent.filled_qty) == (S.CREATED, 1, 0, 0)
    assert intent.created_at == intent.updated_at == NOW
    assert intent.avg_fill_price is None and intent.remaining_qty == Decimal("10")
    assert intent.same_order(_new(order_type="limit", limit_price=Decimal("187.250")))
    assert not intent.same_order(_new(order_type="limit", limit_price=Decimal("187.26")))


@pytest.mark.parametrize("overrides", BAD_INTENT_FIELDS)
def test_bad_intent_fields_raise(overrides: dict[str, object]) -> None:
    with pytest.raises(OrderValidationError):
        _new(**overrides)


def test_avg_fill_price_is_exact() -> None:
    intent = _new()
    filled = OrderIntent(**{**intent.__dict__, "filled_qty": Decimal("3"), "filled_notional": Decimal("300.03")})
    assert filled.avg_fill_price == Decimal("100.01")


def test_fill_validation() -> None:
    Fill(broker_fill_id="f1", client_order_id="cid-1", qty=Decimal("1"), price=Decimal("2"), ts=NOW)
    with pytest.raises(OrderValidationError):
        Fill(broker_fill_id="f1", client_order_id="cid-1", qty=Decimal("0"), price=Decimal("2"), ts=NOW)
    with pytest.raises(OrderValidationError):
        Fill(broker_fill_id="f1", client_order_id="cid-1", qty=Decimal("1"), price=Decimal("2"), ts=NOW.replace(tzinfo=None))
