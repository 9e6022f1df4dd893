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
from importlib.metadata import version

from ai_trading.errors import AiTradingError

Registrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]
SIGPIPE_EXIT = 128 + 13  # the status of a Unix tool stopped by SIGPIPE

logger = logging.getLogger(__name__)


def _registrars() -> list[Registrar]:
    from ai_trading import commands

    return [module.register for module in commands.modules()]


class EventFormatter(logging.Formatter):
    """``time LEVEL logger EVENT key=value ...``: the event name and its structured
    ``extra=`` fields, which the default format would drop."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in vars(record).items() if key not in self._STANDARD)
        return f"{line} {fields}" if fields else line


def _configure_logging(verbosity: int) -> None:
    """Our events at -v (INFO) and -vv (DEBUG); libraries stay at WARNING either way. A
    process whose logging is already set up (an embedding application) keeps its handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EventFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    if verbosity:
        logging.getLogger("ai_trading").setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-trading", description="ai-trading command line")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('ai-trading')}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="our events (-vv: and debug detail)")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _registrars():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
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
