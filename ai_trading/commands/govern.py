"""``ai-trading govern RUN_DIR``: judge a multi-seed training run against the promotion criteria."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ai_trading.commands import add_config_option, formatted
from ai_trading.errors import ConfigError

if TYPE_CHECKING:
    from ai_trading.rl.governance import GovernanceReport

REPORT_FILE = "governance_report.json"
# (column title, per-seed key, format spec, width) of the per-seed table
SEED_COLUMNS = (
    ("seed", "seed", "d", 6),
    ("Sharpe", "sharpe", ".2f", 8),
    ("net return", "net_return", ".2%", 12),
    ("max drawdown", "max_drawdown", ".2%", 14),
    ("turnover", "turnover", ".2f", 10),
    ("DSR", "deflated_sharpe", ".3f", 7),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("govern", help="check a multi-seed RL run against the promotion criteria")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="directory with one */evaluation.json per seed")
    add_config_option(parser, "its [governance] section sets the criteria")
    parser.add_argument("--out", type=Path, help=f"where to write the JSON report (default: RUN_DIR/{REPORT_FILE})")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    parser.set_defaults(handler=_govern)


def _govern(args: argparse.Namespace) -> int:
    """Print the report (tables, or JSON with ``--json``) and write it as JSON; exit status
    0 when it passes, 1 when rejected."""
    from ai_trading.artifacts.atomic import write_atomic
    from ai_trading.config import load_config
    from ai_trading.rl.governance import evaluate, load_runs

    if not args.run_dir.is_dir():
        raise ConfigError(f"{args.run_dir} is not a directory: pass the run directory written by `ai-trading train`")
    report = evaluate(load_runs(args.run_dir), load_config(args.config).governance)
    text = report.to_json()
    out = args.out if args.out is not None else args.run_dir / REPORT_FILE
    write_atomic(out, (text + "\n").encode("utf-8"))
    sys.stdout.write(text + "\n" if args.json else render_report(report, out))
    return 0 if report.passed else 1


def render_report(report: GovernanceReport, written_to: Path) -> str:
    """The report as two plain-text tables (per seed, per rule) and a verdict line."""
    lines = ["Out-of-sample results per seed (test range):"]
    lines.append("".join(title.rjust(width) for title, _, _, width in SEED_COLUMNS))
    for seed in report.per_seed:
        lines.append("".join(formatted(seed[key], spec).rjust(width) for _, key, spec, width in SEED_COLUMNS))
    lines += ["", "Promotion criteria:", f"{'rule':<26}{'metric':<22}{'value':>10}  {'required':<12}result"]
    for check in report.checks:
        value = formatted(check.value, "d" if check.metric == "n_seeds" else ".4g")
        required = f"{check.comparison} {check.threshold:.4g}"
        lines.append(f"{check.code:<26}{check.metric:<22}{value:>10}  {required:<12}{'pass' if check.passed else 'FAIL'}")
    failed = [check.code for check in report.checks if not check.passed]
    verdict = (
        "PASSED: every rule holds"
        if report.passed
        else f"REJECTED: {len(failed)} of {len(report.checks)} rules fail ({', '.join(failed)})"
    )
    lines += ["", verdict, f"report written to {written_to}"]
    return "\n".join(lines) + "\n"
