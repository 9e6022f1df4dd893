"""The bar-time convention: daily bars keyed by their exchange session date whatever
clock time the source stamped, intraday bars by the instant they start; frequencies
named one way and inferred from spacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.data.bartime import session_dates
from ai_trading.data.frequency import bar_seconds, infer_frequency, parse_frequency, periods_per_year
from ai_trading.errors import ConfigError, DataValidationError

ZONES = ["America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney"]
SPELLINGS = [("1Day", "1d"), ("daily", "1d"), ("1D", "1d"), ("1Min", "1min"), ("1T", "1min"), ("5Min", "5min"),
             ("60min", "1h"), ("1Hour", "1h"), ("15min", "15min")]  # fmt: skip
BAD_FREQUENCIES = ["weekly", "7min", "0min", "-1min", "1.5h", ""]
NS = 1_000_000_000


def reference_session_date(instant: datetime, zoned: bool, zone: str) -> datetime:
    """The obviously-correct rule, one timestamp at a time with zoneinfo."""
    if zoned and instant.time() != datetime.min.time():
        instant = instant.astimezone(ZoneInfo(zone))
    return datetime(instant.year, instant.month, instant.day, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.lists(st.integers(0, 60 * 365 * 86_400), min_size=1, max_size=40),
    zoned=st.booleans(),
    zone=st.sampled_from(ZONES),
)
def test_session_dates_match_the_per_timestamp_rule(seconds: list[int], zoned: bool, zone: str) -> None:
    instants = [datetime(1990, 1, 1, tzinfo=UTC) + timedelta(seconds=s) for s in seconds]
    ts = pa.array(instants, pa.timestamp("ns", tz="UTC"))
    got = session_dates(ts, zoned, zone).to_pylist()
    assert got == [reference_session_date(t, zoned, zone) for t in instants]


@pytest.mark.parametrize(
    "stamp",
    ["2024-01-02T05:00:00Z", "2024-07-02T04:00:00Z", "2024-01-02T14:30:00Z", "2024-01-02T21:00:00Z", "2024-01-02T00:00:00Z"],
)
def test_every_way_a_source_stamps_a_new_york_session_lands_on_its_date(stamp: str) -> None:
    """Alpaca (midnight New York in winter and summer), the open, the close, and a date."""
    instant = datetime.fromisoformat(stamp)
    [key] = session_dates(pa.array([instant], pa.timestamp("ns", tz="UTC")), True, "America/New_York").to_pylist()
    assert key == datetime(instant.year, instant.month, 2, tzinfo=UTC)


def test_an_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        session_dates(pa.array([0], pa.timestamp("ns", tz="UTC")), True, "Mars/Olympus")


@pytest.mark.parametrize(("spelled", "canonical"), SPELLINGS)
def test_frequency_spellings(spelled: str, canonical: str) -> None:
    assert parse_frequency(spelled) == canonical
    assert parse_frequency(canonical) == canonical


@pytest.mark.parametrize("spelled", BAD_FREQUENCIES)
def test_bad_frequencies_are_refused(spelled: str) -> None:
    with pytest.raises(DataValidationError, match="frequency"):
        parse_frequency(spelled)


def test_periods_per_year_follow_the_frequency() -> None:
    """Finding 3: minute bars were annualised as if daily (252 periods)."""
    assert periods_per_year("1d", 252, 390) == 252
    assert periods_per_year("1min", 252, 390) == 252 * 390
    assert periods_per_year("5min", 252, 390) == 252 * 78
    assert periods_per_year("1h", 252, 390) == 252 * 6.5
    assert bar_seconds("15min") == 900


@pytest.mark.parametrize(("spacing_s", "expected"), [(60, "1min"), (300, "5min"), (3600, "1h"), (86_400, "1d")])
def test_infer_frequency_from_spacing_with_gaps(spacing_s: int, expected: str) -> None:
    ts = np.arange(50, dtype=np.int64) * spacing_s * NS
    gapped = np.delete(ts, [5, 6, 7, 20])  # missing bars (weekends, halts) do not move the median
    assert infer_frequency(gapped) == expected
    assert infer_frequency(ts[:1]) is None
