"""Bar frequencies: their names, their length, and how many make a year.

Every stored bar carries one of these canonical names. A daily bar (``1d``) is keyed by
its exchange session date; an intraday bar (``1min``, ``5min``, ``1h``, ...) by the UTC
instant it starts. Annualisation follows the frequency: 252 sessions a year for daily
bars, and ``sessions * session_minutes / bar_minutes`` for intraday bars, so a Sharpe
ratio of 1-minute returns is scaled by the number of minutes actually traded in a year.
"""

from __future__ import annotations

import re

import numpy as np

from ai_trading.errors import DataValidationError
from ai_trading.types import MarketPanel

DAILY = "1d"
MINUTE = "1min"
SECONDS_PER_DAY = 86_400
NS_PER_SECOND = 1_000_000_000

# Spellings users and sources write -> canonical name. Alpaca writes 1Day/1Min/5Min/1Hour;
# pandas-style 1D/1T/1H; the CLI's historic ``daily``.
_DAILY_SPELLINGS = {"1d", "d", "day", "1day", "daily"}
_INTRADAY = re.compile(r"^(\d+)\s*(min|m|t|minute|minutes|h|hour|hours)$")
_MINUTES_PER_UNIT = {"min": 1, "m": 1, "t": 1, "minute": 1, "minutes": 1, "h": 60, "hour": 60, "hours": 60}
RULE_FREQUENCY = "a frequency is 1d (daily) or a whole number of minutes or hours (1min, 5min, 15min, 1h)"


def parse_frequency(text: str) -> str:
    """The canonical name of a frequency spelling (``1Day`` -> ``1d``, ``60min`` -> ``1h``).

    :raises DataValidationError: for anything that is not daily or whole minutes/hours
        dividing a day
    """
    spelled = str(text).strip().lower()
    if spelled in _DAILY_SPELLINGS:
        return DAILY
    match = _INTRADAY.match(spelled)
    minutes = int(match.group(1)) * _MINUTES_PER_UNIT[match.group(2)] if match else 0
    if minutes <= 0 or (SECONDS_PER_DAY // 60) % minutes:
        raise DataValidationError(f"frequency {text!r}", None, RULE_FREQUENCY)
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}min"


def bar_seconds(frequency: str) -> int:
    """Nominal length of one bar in seconds (a daily bar counts as 86400)."""
    canonical = parse_frequency(frequency)
    if canonical == DAILY:
        return SECONDS_PER_DAY
    number, unit = int(canonical.rstrip("minh")), canonical.lstrip("0123456789")
    return number * (3600 if unit == "h" else 60)


def is_daily(frequency: str) -> bool:
    return parse_frequency(frequency) == DAILY


def periods_per_year(frequency: str, sessions_per_year: float, session_minutes: float) -> float:
    """Bars in a trading year: the annualisation factor for returns of this frequency.

    :param sessions_per_year: trading sessions a year (252 for US equities)
    :param session_minutes: minutes in one regular session (390 for US equities); an
        intraday bar count never exceeds what a session holds
    """
    seconds = bar_seconds(frequency)
    if seconds >= SECONDS_PER_DAY:
        return float(sessions_per_year)
    return float(sessions_per_year) * max(1.0, session_minutes * 60.0 / seconds)


def infer_frequency(ts_ns: np.ndarray) -> str | None:
    """The frequency that timestamps of one series are spaced at, or None when unknowable.

    The median spacing decides (weekends and holidays do not move a median of daily
    bars); a spacing of 20 hours or more is daily, below that the nearest whole minute.
    Returns None for fewer than two bars.
    """
    ts = np.unique(np.asarray(ts_ns, dtype=np.int64))
    if ts.size < 2:
        return None
    return frequency_of_spacing(float(np.median(np.diff(ts))) / NS_PER_SECOND)


def frequency_of_spacing(seconds: float) -> str:
    """The frequency of bars spaced ``seconds`` apart (a median spacing): 20 hours or
    more is daily, below that the nearest whole number of minutes that divides a day."""
    if seconds >= 20 * 3600:
        return DAILY
    minutes = max(1, round(seconds / 60))
    while (SECONDS_PER_DAY // 60) % minutes:
        minutes -= 1
    return parse_frequency(f"{minutes}min")


def panel_frequency(panel: MarketPanel) -> str:
    """The panel's declared frequency, else the one its time axis is spaced at (daily for
    a single bar)."""
    return panel.frequency or infer_frequency(panel.ts) or DAILY


def panel_periods_per_year(panel: MarketPanel, sessions_per_year: float, session_minutes: float) -> float:
    """:func:`periods_per_year` of the panel's frequency."""
    return periods_per_year(panel_frequency(panel), sessions_per_year, session_minutes)
