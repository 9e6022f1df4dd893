"""The one trading loop for replay, paper and live trading (clocks, bar feeds, run state)."""

from ai_trading.runtime.clock import Clock, ReplayClock, Tick
from ai_trading.runtime.feed import BarFeed, StoredBarFeed
from ai_trading.runtime.loop import LoopOutcome, ModelIdentity, StepReport, TradingLoop
from ai_trading.runtime.model_watch import ModelWatch
from ai_trading.runtime.monitor import Monitor
from ai_trading.runtime.run_state import Cursor, RunState
from ai_trading.runtime.sessions import ScheduledBar, Session
from ai_trading.runtime.wall_clock import DataStatus, WallClock

__all__ = [
    "BarFeed",
    "Clock",
    "Cursor",
    "DataStatus",
    "LoopOutcome",
    "ModelIdentity",
    "ModelWatch",
    "Monitor",
    "ReplayClock",
    "RunState",
    "ScheduledBar",
    "Session",
    "StepReport",
    "StoredBarFeed",
    "Tick",
    "TradingLoop",
    "WallClock",
]
