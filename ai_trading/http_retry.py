"""Idempotent HTTP requests retried with exponential backoff, for every API client we run.

The Alpaca trading adapter (``brokers``) and the Alpaca market-data client (``data``) both
use this module; it sits at the top of the package so that both may import it without
the data layer knowing anything of execution. Only requests that are safe to repeat (GET,
DELETE) belong here: an order submission is sent once by its caller.

A transport error (connection refused, timeout, dropped connection), HTTP 429 or a 5xx is
retried; the wait doubles after each attempt, and a ``Retry-After`` header (seconds or an
HTTP date), when the server sends one, sets the wait instead. Anything else is returned
to the caller, which knows what a 401 or 422 means for it. Only the request path and the
failure reach logs and errors: credentials travel in headers and are never repeated.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ai_trading.errors import AiTradingError

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is repeated.

    :param max_retries: extra attempts after the first one
    :param backoff_s: wait before the first retry, seconds; doubled for each later one
    """

    max_retries: int
    backoff_s: float


def error_message(response: httpx.Response) -> str:
    """The server's own explanation of an error response (Alpaca's ``message`` field),
    else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message", body)) if isinstance(body, dict) else str(body)[:200]


def retry_after_s(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (``Retry-After``), None when it did not say."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def request_with_retries(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    policy: RetryPolicy,
    error: Callable[[str], AiTradingError],
    service: str,
    event: str,
    sleep: Callable[[float], None] = time.sleep,
) -> httpx.Response:
    """Send an idempotent request, retrying transport errors, 429 and 5xx.

    :param error: builds the domain error raised when every attempt failed
    :param service: names the server in that error's message ("Alpaca")
    :param event: the log event of each failed attempt (``ALPACA_REQUEST_RETRY``)
    :returns: the first response that is not retried (it may still be a 4xx)
    """
    attempts = 1 + policy.max_retries
    failure = ""
    for attempt in range(attempts):
        wait = policy.backoff_s * 2**attempt
        try:
            response = client.request(method, path, params=params)
        except httpx.TransportError as exc:
            failure = type(exc).__name__
        else:
            if response.status_code not in RETRY_STATUS:
                return response
            failure = f"HTTP {response.status_code}: {error_message(response)}"
            asked = retry_after_s(response)
            wait = wait if asked is None else asked
        logger.warning(event, extra={"method": method, "path": path, "attempt": attempt + 1, "failure": failure})
        if attempt + 1 < attempts:
            sleep(wait)
    raise error(f"{service} {method} {path} failed after {attempts} attempts: {failure}")
