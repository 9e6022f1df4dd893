"""The ``ai-trading`` command line: one argparse subcommand group per job.

Each module in ``ai_trading.commands`` registers one group with ``register(subparsers)``
and imports its domain modules inside its handlers, so that ``ai-trading --help`` stays
fast and a missing optional extra only affects the commands that need it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from ai_trading.errors import AiTradingError

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
SIGPIPE_EXIT = 128 + 13  # the status of a Unix tool stopped by SIGPIPE

logger = logging.getLogger(__name__)


def _registrars() -> list[Registrar]:
    from ai_trading import commands

    return [module.register for module in commands.modules()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-trading", description="ai-trading command line")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except AiTradingError as exc:
        print(f"ai-trading {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of stdout went away (``ai-trading sim --json | head``): stop quietly,
        # as Unix tools do. Stdout now points at /dev/null so that the flush at exit
        # does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except (OSError, MemoryError) as exc:
        # The system refused a file operation (a directory that cannot be created, no
        # permission, a full disk: the message names the path) or the memory a request
        # needs (more bars than the machine holds). -vv logs the traceback.
        logger.debug("CLI_SYSTEM_ERROR", exc_info=True)
        print(f"ai-trading {args.command}: error: {str(exc) or 'out of memory'}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
