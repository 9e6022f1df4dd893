"""When the trading loop acts: the bar closes of a calendar, as a :class:`Clock` tells them.

Replay walks the stored bars of a range as fast as the machine allows
(:class:`ReplayClock`); a paper or live clock waits for each bar to close on the exchange
calendar. The loop only asks for the next bar after the one it finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ai_trading.types import IntArray


@dataclass(frozen=True)
class Tick:
    """One bar close to act on.

    :param bar_ts: the bar's key in the store (int64 ns UTC; see ``ai_trading.data.bartime``)
    :param trade: False for a bar whose orders could never fill in the run (the last bar
        of a replay range): the loop then only follows fills and marks the book
    """

    bar_ts: int
    trade: bool = True


class Clock(Protocol):
    """The calendar of bar closes the loop acts on."""

    def next_tick(self, after: int | None) -> Tick | None:
        """The first bar close after the bar ``after`` (None: the first one), waiting for
        it to happen where the clock is real; None when the run is over."""
        ...


class ReplayClock:
    """The bars of a replay range, without waiting.

    :param bar_times: the range's bar keys, strictly increasing (from the store)
    """

    def __init__(self, bar_times: IntArray) -> None:
        self._times = np.asarray(bar_times, dtype=np.int64)

    @property
    def bar_times(self) -> IntArray:
        return self._times

    def next_tick(self, after: int | None) -> Tick | None:
        position = 0 if after is None else int(np.searchsorted(self._times, after, side="right"))
        if position >= self._times.size:
            return None
        return Tick(int(self._times[position]), trade=position < self._times.size - 1)
