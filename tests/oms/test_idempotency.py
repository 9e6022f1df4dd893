"""CIDv2 ids: deterministic, validated field by field, round-tripping through parse."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ai_trading.errors import ClientOrderIdError
from ai_trading.oms.idempotency import (
    MAX_CID_LENGTH,
    SIGNAL_HASH_HEX,
    build_client_order_id,
    canonical_qty,
    is_client_order_id,
    parse_client_order_id,
    signal_hash,
)

HASH = "0123456789abcdef"
GOOD = dict(
    strategy="momentum",
    symbol="BRK.B",
    side="buy",
    session="20240105",
    horizon="1d",
    signal_hash=HASH,
    qty=Decimal("12.5"),
    version=2,
)
BAD_FIELDS = [
    ("strategy", "mom:x"),
    ("strategy", "mom x"),
    ("strategy", ""),
    ("symbol", "AAPL\t"),
    ("symbol", "ÄPL"),
    ("side", "BUY"),
    ("side", "short"),
    ("session", "2024-01-05"),
    ("session", "20240230"),
    ("session", "240105"),
    ("horizon", "1 d"),
    ("signal_hash", "0123456789ABCDEF"),
    ("signal_hash", "0123456789abcde"),
    ("signal_hash", "0123456789abcdeg"),
    ("qty", Decimal(0)),
    ("qty", Decimal("-1")),
    ("qty", Decimal("Infinity")),
    ("qty", 1.5),
    ("qty", "1e"),
    ("version", -1),
    ("version", "v:1"),
    ("version", "x" * 17),
    ("version", True),
]
NON_CANONICAL = [
    "CIDv2:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:12.50:2",
    "CIDv2:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:1.25E+1:2",
    "CIDv2:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:012.5:2",
    "CIDv2:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:+12.5:2",
    "CIDv1:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:12.5:2",
    "CIDv2:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:12.5",
    "CIDv2:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:12.5:2:extra",
    "a4f5e6b0-2f7c-4b1a-9a64-0c4c3f0e7d11",
]
QTY_CANON = [
    (Decimal("100"), "100"),
    (Decimal("1E+2"), "100"),
    (Decimal("1.50"), "1.5"),
    (Decimal("0.000100"), "0.0001"),
    (7, "7"),
    ("0012.30", "12.3"),
]

tokens = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=":"), min_size=1, max_size=12)
quantities = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1e9"), allow_nan=False, places=6)


def test_build_parse_example() -> None:
    cid = build_client_order_id(**GOOD)
    assert cid == "CIDv2:momentum:BRK.B:buy:20240105:1d:0123456789abcdef:12.5:2"
    parsed = parse_client_order_id(cid)
    assert parsed.session == date(2024, 1, 5) and parsed.qty == Decimal("12.5") and parsed.version == "2"
    assert str(parsed) == cid and is_client_order_id(cid)


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
def test_every_field_is_validated(field: str, value: object) -> None:
    with pytest.raises(ClientOrderIdError, match=field if field != "session" else "session|date"):
        build_client_order_id(**{**GOOD, field: value})


@pytest.mark.parametrize("cid", NON_CANONICAL)
def test_non_canonical_ids_are_refused(cid: str) -> None:
    with pytest.raises(ClientOrderIdError):
        parse_client_order_id(cid)
    assert not is_client_order_id(cid)


@pytest.mark.parametrize(("qty", "expected"), QTY_CANON)
def test_canonical_qty(qty: object, expected: str) -> None:
    assert canonical_qty(qty) == expected  # type: ignore[arg-type]


def test_too_long_id_is_a_clear_error() -> None:
    with pytest.raises(ClientOrderIdError, match=f"limit is {MAX_CID_LENGTH}"):
        build_client_order_id(**{**GOOD, "strategy": "s" * 100})


@given(
    strategy=tokens,
    symbol=tokens,
    side=st.sampled_from(["buy", "sell"]),
    session=st.dates(min_value=date(1970, 1, 1), max_value=date(2999, 12, 31)),
    horizon=tokens,
    digest=st.text("0123456789abcdef", min_size=SIGNAL_HASH_HEX, max_size=SIGNAL_HASH_HEX),
    qty=quantities.filter(lambda q: q > 0),
    version=st.one_of(st.integers(0, 10**6), st.from_regex(r"[A-Za-z0-9._-]{1,16}", fullmatch=True)),
)
def test_parse_round_trips(
    strategy: str, symbol: str, side: str, session: date, horizon: str, digest: str, qty: Decimal, version: int | str
) -> None:
    cid = build_client_order_id(strategy, symbol, side, session, horizon, digest, qty, version)
    assert len(cid) <= MAX_CID_LENGTH
    parsed = parse_client_order_id(cid)
    assert (parsed.strategy, parsed.symbol, parsed.side, parsed.session) == (strategy, symbol, side, session)
    assert (parsed.horizon, parsed.signal_hash, parsed.qty, parsed.version) == (horizon, digest, qty, str(version))
    assert str(parsed) == cid
    # Equal quantities spelled differently give the same id.
    assert build_client_order_id(strategy, symbol, side, session, horizon, digest, qty * 1 + Decimal("0.000"), version) == cid


def test_signal_hash_is_canonical_and_sensitive() -> None:
    inputs = {"close": Decimal("187.25"), "target": 0.125, "asof": date(2024, 1, 5), "model": "m1"}
    digest = signal_hash(inputs)
    assert len(digest) == SIGNAL_HASH_HEX and digest == digest.lower()
    assert signal_hash(dict(reversed(list(inputs.items())))) == digest
    assert signal_hash({**inputs, "close": Decimal("187.250")}) == digest
    assert signal_hash({**inputs, "target": 0.1250001}) != digest
    with pytest.raises(ClientOrderIdError):
        signal_hash({"x": float("nan")})
    with pytest.raises(ClientOrderIdError):
        signal_hash({"x": object()})


def test_same_decision_same_id_in_another_process() -> None:
    code = (
        "from decimal import Decimal; from ai_trading.oms.idempotency import build_client_order_id, signal_hash;"
        "print(build_client_order_id('mom','AAPL','sell','20240105','1d',"
        "signal_hash({'close': Decimal('187.25'), 'w': 0.5}),Decimal('3.10'),1))"
    )
    here = build_client_order_id(
        "mom", "AAPL", "sell", "20240105", "1d", signal_hash({"w": 0.5, "close": Decimal("187.25")}), Decimal("3.1"), 1
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() for _ in range(2)]
    assert runs == [here, here]
