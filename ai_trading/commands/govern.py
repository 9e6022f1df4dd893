"""``ai-trading govern RUN_DIR``: judge a multi-seed training run against the promotion criteria."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ai_trading.commands import add_config_option
from ai_trading.errors import ConfigError

REPORT_FILE = "governance_report.json"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("govern", help="check a multi-seed RL run against the promotion criteria")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="directory with one */evaluation.json per seed")
    add_config_option(parser, "its [governance] section sets the criteria")
    parser.add_argument("--out", type=Path, help=f"where to write the JSON report (default: RUN_DIR/{REPORT_FILE})")
    parser.set_defaults(handler=_govern)


def _govern(args: argparse.Namespace) -> int:
    """Print the report as JSON and write it; exit status 0 when it passes, 1 when rejected."""
    from ai_trading.config import load_config
    from ai_trading.rl.governance import evaluate, load_runs

    if not args.run_dir.is_dir():
        raise ConfigError(f"{args.run_dir} is not a directory: pass the run directory written by `ai-trading train`")
    report = evaluate(load_runs(args.run_dir), load_config(args.config).governance)
    text = report.to_json()
    out = args.out if args.out is not None else args.run_dir / REPORT_FILE
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(out)
    sys.stdout.write(text + "\n")
    return 0 if report.passed else 1
