"""Alpaca's market clock and trading calendar (Trading API v2), the sessions of a real-time loop.

``GET /v2/clock`` tells whether the market is open now and when it next opens and closes;
``GET /v2/calendar?start=&end=`` lists the sessions of a date range with their open and
close in the exchange's local time (``"09:30"``, ``"13:00"`` on an early close). Both are
safe to repeat: transport errors, 429 and 5xx are retried (:mod:`ai_trading.http_retry`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from types import TracebackType
from typing import Any, Self
from zoneinfo import ZoneInfo

import httpx

from ai_trading.config import AlpacaConfig
from ai_trading.data.bartime import check_time_zone
from ai_trading.errors import BrokerError, ConfigError
from ai_trading.http_retry import RetryPolicy, error_message, request_with_retries
from ai_trading.runtime.sessions import Session

logger = logging.getLogger(__name__)

CLOCK_PATH = "/v2/clock"
CALENDAR_PATH = "/v2/calendar"


@dataclass(frozen=True)
class MarketClock:
    """Alpaca's answer to ``GET /v2/clock`` (aware datetimes)."""

    timestamp: datetime
    is_open: bool
    next_open: datetime
    next_close: datetime


def _instant(value: Any, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise BrokerError(f"Alpaca {what} {value!r} is not an RFC-3339 time") from exc
    if moment.tzinfo is None:
        raise BrokerError(f"Alpaca {what} {value!r} has no time zone")
    return moment


class AlpacaCalendar:
    """The market clock and the sessions of Alpaca's trading calendar.

    :param config: the trading API root, credentials, timeout and retries
    :param exchange_tz: the zone the calendar's local open and close times are in
        (``[data] exchange_tz``; Alpaca's US equities calendar is New York time)
    """

    def __init__(self, config: AlpacaConfig, exchange_tz: str) -> None:
        if not config.key_id or not config.secret_key:
            raise ConfigError("Alpaca credentials missing: set APCA_API_KEY_ID and APCA_API_SECRET_KEY")
        self._zone = ZoneInfo(check_time_zone(exchange_tz))
        self._policy = RetryPolicy(config.max_retries, config.retry_backoff_s)
        self._client = httpx.Client(
            base_url=config.base_url.rstrip("/"),
            timeout=httpx.Timeout(config.timeout_s),
            headers={"APCA-API-KEY-ID": config.key_id, "APCA-API-SECRET-KEY": config.secret_key},
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = request_with_retries(
            self._client, "GET", path, params=params, policy=self._policy, error=BrokerError, service="Alpaca",
            event="ALPACA_CALENDAR_REQUEST_RETRY",
        )  # fmt: skip
        if response.status_code in (401, 403):
            raise BrokerError(f"Alpaca refused {path} (HTTP {response.status_code}): check APCA_API_KEY_ID/APCA_API_SECRET_KEY")
        if response.status_code >= 400:
            raise BrokerError(f"Alpaca GET {path}: HTTP {response.status_code}: {error_message(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise BrokerError(f"Alpaca GET {path}: the response is not JSON") from exc

    def market_clock(self) -> MarketClock:
        """``GET /v2/clock``."""
        body = self._get(CLOCK_PATH)
        if not isinstance(body, dict) or not {"timestamp", "is_open", "next_open", "next_close"} <= body.keys():
            raise BrokerError("Alpaca GET /v2/clock: the answer lacks timestamp, is_open, next_open or next_close")
        return MarketClock(
            _instant(body["timestamp"], "clock timestamp"), bool(body["is_open"]),
            _instant(body["next_open"], "clock next_open"), _instant(body["next_close"], "clock next_close"),
        )  # fmt: skip

    def sessions(self, start: date, end: date) -> list[Session]:
        """The sessions from ``start`` to ``end`` (both inclusive, as Alpaca reads them), by date."""
        body = self._get(CALENDAR_PATH, {"start": start.isoformat(), "end": end.isoformat()})
        if not isinstance(body, list):
            raise BrokerError("Alpaca GET /v2/calendar: the answer is not a list of sessions")
        sessions = [self._session(item) for item in body]
        return sorted(sessions, key=lambda s: s.day)

    def _session(self, item: Any) -> Session:
        try:
            day = date.fromisoformat(str(item["date"]))
            opens, closes = (time.fromisoformat(str(item[key])) for key in ("open", "close"))
        except (KeyError, TypeError, ValueError) as exc:
            raise BrokerError(f"Alpaca GET /v2/calendar: session {item!r} lacks a date, open or close (HH:MM)") from exc
        return Session(
            day, datetime.combine(day, opens, self._zone).astimezone(ZoneInfo("UTC")),
            datetime.combine(day, closes, self._zone).astimezone(ZoneInfo("UTC")),
        )  # fmt: skip
