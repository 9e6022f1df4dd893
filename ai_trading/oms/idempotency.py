"""Deterministic client order ids (CIDv2), so a resend can never become a second order.

``CIDv2:{strategy}:{symbol}:{side}:{session}:{horizon}:{signal_hash}:{qty}:{version}``

The same decision gives the same id in any process and after any restart, because every
field is a canonical rendering of the decision's inputs: brokers refuse a second order
with an id they already hold, and the OMS then looks the first one up by that id.

Field rules (checked when building and when parsing):

- strategy, symbol, horizon: printable ASCII without ``:`` or whitespace (symbols such as
  ``BRK.B`` or ``BTC/USD`` are fine).
- side: ``buy`` or ``sell``.
- session: the trading date as ``YYYYMMDD``, a real calendar date (weekends are allowed:
  crypto trades every day; the exchange calendar is the strategy's business).
- signal_hash: :data:`SIGNAL_HASH_HEX` lowercase hex digits, see :func:`signal_hash`.
- qty: a canonical positive decimal: no exponent, sign, leading or trailing zeros.
- version: a non-negative integer or a short token of ``[A-Za-z0-9._-]``.

The whole id is at most :data:`MAX_CID_LENGTH` characters (Alpaca's limit).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import astuple, dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ai_trading.errors import ClientOrderIdError

PREFIX = "CIDv2"
MAX_CID_LENGTH = 128
SIGNAL_HASH_HEX = 16
SIDES: tuple[str, ...] = ("buy", "sell")
MAX_VERSION_TOKEN = 16

_TOKEN = re.compile(r"[!-9;-~]+")  # printable ASCII 0x21..0x7E except ':' (0x3A)
_SESSION = re.compile(r"[0-9]{8}")
_HASH = re.compile(f"[0-9a-f]{{{SIGNAL_HASH_HEX}}}")
_VERSION = re.compile(f"[A-Za-z0-9._-]{{1,{MAX_VERSION_TOKEN}}}")


@dataclass(frozen=True)
class ClientOrderId:
    """The fields of a CIDv2 id, as :func:`parse_client_order_id` returns them."""

    strategy: str
    symbol: str
    side: str
    session: date
    horizon: str
    signal_hash: str
    qty: Decimal
    version: str

    def __str__(self) -> str:
        return build_client_order_id(*astuple(self))


def canonical_qty(qty: Decimal | int | str) -> str:
    """The one spelling of a positive quantity: ``Decimal('1.50') -> '1.5'``, ``100 -> '100'``.

    Floats are refused: their binary value is rarely the decimal the caller meant.
    """
    if isinstance(qty, (float, bool)):
        raise ClientOrderIdError(f"qty must be a Decimal, int or decimal string, not {type(qty).__name__} {qty!r}")
    try:
        value = Decimal(qty)
    except InvalidOperation as exc:
        raise ClientOrderIdError(f"qty {qty!r} is not a decimal number") from exc
    if not value.is_finite() or value <= 0:
        raise ClientOrderIdError(f"qty must be a finite number > 0, got {qty!r}")
    return format(value.normalize(), "f")


def _token(name: str, value: str) -> str:
    if not isinstance(value, str) or _TOKEN.fullmatch(value) is None:
        raise ClientOrderIdError(
            f"{name} {value!r} must be non-empty printable ASCII without ':' or whitespace"
        )
    return value


def _session(value: date | str) -> str:
    if isinstance(value, datetime):
        raise ClientOrderIdError(f"session must be a date or 'YYYYMMDD', not a datetime ({value.isoformat()})")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if not isinstance(value, str) or _SESSION.fullmatch(value) is None:
        raise ClientOrderIdError(f"session {value!r} must be a trading date written YYYYMMDD")
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise ClientOrderIdError(f"session {value!r} is not a calendar date: {exc}") from exc
    return value


def _version(value: int | str) -> str:
    if isinstance(value, bool):
        raise ClientOrderIdError(f"version must be an int or a short token, not {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ClientOrderIdError(f"version must be >= 0, got {value}")
        return str(value)
    if not isinstance(value, str) or _VERSION.fullmatch(value) is None:
        raise ClientOrderIdError(
            f"version {value!r} must be an integer or 1..{MAX_VERSION_TOKEN} characters of [A-Za-z0-9._-]"
        )
    return value


def build_client_order_id(
    strategy: str,
    symbol: str,
    side: str,
    session: date | str,
    horizon: str,
    signal_hash: str,
    qty: Decimal | int | str,
    version: int | str,
) -> str:
    """The CIDv2 id of one trading decision; raises :class:`ClientOrderIdError` on a bad field."""
    if side not in SIDES:
        raise ClientOrderIdError(f"side must be one of {SIDES}, got {side!r}")
    if not isinstance(signal_hash, str) or _HASH.fullmatch(signal_hash) is None:
        raise ClientOrderIdError(
            f"signal_hash {signal_hash!r} must be {SIGNAL_HASH_HEX} lowercase hex digits (use signal_hash())"
        )
    fields = (
        PREFIX,
        _token("strategy", strategy),
        _token("symbol", symbol),
        side,
        _session(session),
        _token("horizon", horizon),
        signal_hash,
        canonical_qty(qty),
        _version(version),
    )
    cid = ":".join(fields)
    if len(cid) > MAX_CID_LENGTH:
        raise ClientOrderIdError(
            f"client_order_id is {len(cid)} characters, the broker limit is {MAX_CID_LENGTH}: "
            f"shorten the strategy or horizon name ({cid!r})"
        )
    return cid


def parse_client_order_id(cid: str) -> ClientOrderId:
    """Split a CIDv2 id into its fields; raises :class:`ClientOrderIdError` unless it is canonical."""
    parts = cid.split(":") if isinstance(cid, str) else []
    if len(parts) != 9 or parts[0] != PREFIX:
        raise ClientOrderIdError(f"{cid!r} is not a CIDv2 id ({PREFIX}: followed by 8 ':'-separated fields)")
    _, strategy, symbol, side, session, horizon, digest, qty, version = parts
    # Building validates every field; equality then proves the spelling is the canonical one.
    if build_client_order_id(strategy, symbol, side, session, horizon, digest, qty, version) != cid:
        raise ClientOrderIdError(f"{cid!r} is not canonical: qty must be written {canonical_qty(qty)!r}")
    return ClientOrderId(
        strategy=strategy,
        symbol=symbol,
        side=side,
        session=datetime.strptime(session, "%Y%m%d").date(),
        horizon=horizon,
        signal_hash=digest,
        qty=Decimal(qty),
        version=version,
    )


def is_client_order_id(cid: str) -> bool:
    """True when ``cid`` is a well-formed CIDv2 id (reconciliation flags such unknown orders apart)."""
    try:
        parse_client_order_id(cid)
    except ClientOrderIdError:
        return False
    return True


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal) and value.is_finite():
        return format(value.normalize(), "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return value.tolist()
    raise ClientOrderIdError(f"signal input of type {type(value).__name__} has no canonical form: {value!r}")


def signal_hash(inputs: Mapping[str, Any]) -> str:
    """First :data:`SIGNAL_HASH_HEX` hex digits of SHA-256 over the canonical JSON of ``inputs``.

    Keys are sorted and separators fixed, so equal inputs hash equally in any process.
    Values may be JSON scalars, lists, mappings, Decimal, date/datetime and NumPy values;
    NaN and infinity are refused (they have no stable meaning as a decision input).
    """
    try:
        text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_canonical)
    except ValueError as exc:
        raise ClientOrderIdError(f"signal inputs must be finite: {exc}") from exc
    return hashlib.sha256(text.encode()).hexdigest()[:SIGNAL_HASH_HEX]
