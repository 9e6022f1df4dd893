"""``ai-trading replay``: the trading loop over stored bars, with the SimBroker, as fast as it goes."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ai_trading.commands import add_config_option, split_list

if TYPE_CHECKING:
    from ai_trading.runtime.loop import StepReport
    from ai_trading.runtime.session import TradingSession


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay", help="trade a model over stored bars through the engine, the OMS and the SimBroker (resumable)"
    )
    parser.add_argument("--model", required=True, help="demo, a registered model name or a signed artifact directory")
    parser.add_argument("--start", required=True, help="first bar, inclusive (ISO date)")
    parser.add_argument("--end", required=True, help="last bar, exclusive (ISO date)")
    parser.add_argument("--symbols", help="comma-separated symbols: the demo's universe and the broker's (default: all stored)")
    parser.add_argument("--frequency", help="bar frequency (default: the one the symbols are stored at)")
    parser.add_argument("--out", type=Path, help="run directory (default: <runtime.runs_dir>/<model>_<start>_<end>); "
                        "the same directory resumes the run")  # fmt: skip
    parser.add_argument("--dsn", help="OMS database URL (default: an SQLite file in the run directory, never [oms] dsn)")
    parser.add_argument("--db", type=Path, help="DuckDB market-data store (default: data.db_path)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_config_option(parser, "[runtime], [execution], [engine], [risk], [cost_model], [manager], [artifacts], [data]")
    parser.set_defaults(handler=_replay)


class _StopRequest:
    """SIGINT/SIGTERM set a flag the loop reads between bars (the current bar finishes)
    and a real-time clock reads while it waits (it returns within a second)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum

    def requested(self) -> bool:
        return self.signal is not None


class _Progress:
    """A line on a terminal's stderr every ``interval_s``."""

    def __init__(self, mode: str, total: int | None, interval_s: float) -> None:
        self._mode = mode
        self._total = "" if total is None else f", {total} in the range"
        self._interval = interval_s
        self._last = time.monotonic()
        self._done = 0

    def __call__(self, report: StepReport) -> None:
        self._done += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            from ai_trading.brokers.sim_market import utc_datetime

            self._last = now
            bar = utc_datetime(report.tick.bar_ts)
            shown = bar.date().isoformat() if bar.hour == bar.minute == 0 else bar.isoformat(timespec="minutes")
            print(f"{self._mode}: bar {shown} ({self._done} since this start{self._total}), orders {report.cursor.orders}, "
                  f"equity {report.equity:,.0f}", file=sys.stderr, flush=True)  # fmt: skip


def run_trading_command(
    mode: str, open_run: Callable[[Callable[[], bool]], TradingSession], run_dir: Path, as_json: bool, progress_interval_s: float
) -> int:
    """Open a run (``open_run(stop)`` passes its gates), trade until its clock ends or a
    signal, print the summary; the one Ctrl-C and summary behaviour of replay, paper and live."""
    from ai_trading.runtime.session import run_session
    from ai_trading.runtime.summary import run_summary

    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        session = open_run(stop.requested)
        try:
            if not as_json:
                print(f"{mode} {session.identity.name} v{session.identity.version} over {len(session.universe)} symbols "
                      f"into {run_dir}", file=sys.stderr)  # fmt: skip
            progress = _Progress(mode, session.timing.planned_bars, progress_interval_s) if sys.stderr.isatty() else None
            stopped = run_session(session, stop.requested, progress)
            summary = run_summary(session.state, session.manager.store, session.identity.name, session.initial_cash, stopped)
        finally:
            session.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if as_json:
        print(json.dumps(summary.to_dict() | {"run_dir": str(run_dir), "mode": mode}, indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(summary.lines()))
        print(f"run directory: {run_dir} (execution log: execution_log.parquet; `ai-trading tca --run {run_dir}`)")
    if stopped:
        print(f"{mode} stopped by signal {stop.signal} at bar {summary.last_bar or 'none'} after {summary.orders} orders; "
              "run the same command to resume", file=sys.stderr)  # fmt: skip
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ai_trading.config import load_config
    from ai_trading.data.store import open_store
    from ai_trading.runtime.replay import ReplayRequest, default_run_dir, open_replay

    config = load_config(args.config)
    if args.db is not None:
        config = replace(config, data=replace(config.data, db_path=args.db))
    symbols = split_list(args.symbols)
    run_dir = args.out if args.out is not None else default_run_dir(config, args.model, args.start, args.end)
    request = ReplayRequest(args.model, args.start, args.end, None if symbols is None else tuple(symbols), args.frequency, run_dir, args.dsn)
    with open_store(config.data, builtin=args.db is None) as store:
        return run_trading_command(
            "replay", lambda stop: open_replay(config, request, store), run_dir, args.json, config.runtime.progress_interval_s
        )
