"""The one trading loop for replay, paper and live trading (clocks, bar feeds, run state)."""

from ai_trading.runtime.clock import Clock, ReplayClock, Tick
from ai_trading.runtime.feed import BarFeed, StoredBarFeed
from ai_trading.runtime.loop import LoopOutcome, ModelIdentity, StepReport, TradingLoop
from ai_trading.runtime.run_state import Cursor, RunState

__all__ = [
    "BarFeed",
    "Clock",
    "Cursor",
    "LoopOutcome",
    "ModelIdentity",
    "ReplayClock",
    "RunState",
    "StepReport",
    "StoredBarFeed",
    "Tick",
    "TradingLoop",
]
