"""``ai-trading alerts``: test receivers, manage silences, inspect and drain the outbox."""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ai_trading.commands import add_config_option
from ai_trading.config import AppConfig, load_config

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ai_trading.monitoring.outbox import DeliveryReport, DeliveryWorker, Outbox

SECTIONS = "[alerts], [oms]"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("alerts", help="alert receivers, silences and the notification outbox")
    actions = parser.add_subparsers(dest="alerts_action", required=True)
    test = actions.add_parser("test", help="send a test alert through every configured receiver (via the outbox)")
    test.set_defaults(handler=_test)
    silence = actions.add_parser("silence", help="mute alerts matching every --matcher for --duration")
    silence.add_argument("--matcher", action="append", required=True, metavar="NAME=VALUE",
                         help="label matcher (=, !=, =~ regex, !~ regex); repeat for more")  # fmt: skip
    silence.add_argument("--duration", required=True, help="how long, e.g. 30m, 2h, 1d")
    silence.add_argument("--comment", required=True, help="why (kept with the silence)")
    silence.add_argument("--author", help="who (default: the login name)")
    silence.set_defaults(handler=_silence)
    silences = actions.add_parser("silences", help="list silences in force (--all: expired ones too)")
    silences.add_argument("--all", action="store_true", help="include expired silences")
    silences.set_defaults(handler=_silences)
    unsilence = actions.add_parser("unsilence", help="expire a silence now")
    unsilence.add_argument("silence_id", metavar="ID")
    unsilence.set_defaults(handler=_unsilence)
    outbox = actions.add_parser("outbox", help="notifications pending or failed in the outbox")
    outbox.set_defaults(handler=_outbox)
    deliver = actions.add_parser("deliver", help="run the delivery worker once over the due notifications")
    deliver.set_defaults(handler=_deliver)
    for action in (test, silence, silences, unsilence, outbox, deliver):
        action.add_argument("--json", action="store_true", help="print machine-readable JSON")
        add_config_option(action, SECTIONS)


@dataclass
class _Context:
    config: AppConfig
    engine: Engine


@contextmanager
def _context(args: argparse.Namespace) -> Iterator[_Context]:
    from ai_trading.oms.engine import create_oms_engine

    config = load_config(args.config)
    engine = create_oms_engine(config.oms)
    try:
        yield _Context(config, engine)
    finally:
        engine.dispose()


def _worker(context: _Context) -> tuple[Outbox, DeliveryWorker, list[str]]:
    from ai_trading.errors import ConfigError
    from ai_trading.monitoring.outbox import DeliveryWorker, Outbox
    from ai_trading.monitoring.receivers import build_receiver
    from ai_trading.monitoring.routing import load_routing

    alerts = context.config.alerts
    if alerts.routes_file is None:
        raise ConfigError("no receivers: set [alerts] routes_file to a routes file (see examples/alerts.toml)")
    routing = load_routing(alerts.routes_file, alerts)
    # A kill-switch receiver acts where alerts are raised, never through the outbox.
    receivers = {
        name: build_receiver(spec, alerts.receiver_timeout_s) for name, spec in routing.receivers.items() if spec.kill_switch is None
    }
    outbox = Outbox(context.engine)
    return outbox, DeliveryWorker(outbox, receivers, alerts), sorted(receivers)


def _print_report(report: DeliveryReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps({
            "delivered": report.delivered, "retried": report.retried, "failed": report.failed,
            "local_alerts": [a.to_payload(a.starts_at) for a in report.alerts],
        }, indent=2, sort_keys=True))  # fmt: skip
        return
    print(f"delivered {len(report.delivered)}, to retry {len(report.retried)}, failed {len(report.failed)}")
    for alert in report.alerts:
        print(f"  ALERT {alert.name}: {alert.annotations['summary']}: {alert.annotations['description']}")


def _test(args: argparse.Namespace) -> int:
    from ai_trading.monitoring.alerts import Alert, Severity
    from ai_trading.monitoring.dispatcher import build_notification
    from ai_trading.oms.models import utc_now

    with _context(args) as context:
        outbox, worker, receivers = _worker(context)
        now = utc_now()
        keys = {}
        for receiver in receivers:
            alert = Alert("AlertingTest", Severity.INFO, {"receiver": receiver}, {
                "summary": "test alert from `ai-trading alerts test`", "description": "if you read this, the receiver works",
                "runbook": "nothing to do",
            }, now, now)  # fmt: skip
            notification = build_notification(receiver, f"test/{receiver}", {"receiver": receiver}, [alert], now, context.config.alerts.external_url)
            outbox.enqueue(notification)
            keys[notification.idempotency_key] = receiver
        report = worker.run_once()
    outcome = {receiver: "not attempted (other notifications were due first: run `alerts deliver`)" for receiver in receivers}
    for key, receiver in keys.items():
        if key in report.delivered:
            outcome[receiver] = "delivered"
        elif key in report.retried:
            outcome[receiver] = "failed, will be retried by `ai-trading alerts deliver`"
        elif key in report.failed:
            outcome[receiver] = "refused (not retried)"
    details = {name: [r.detail for r in results] for name, results in report.by_receiver.items()}
    if args.json:
        print(json.dumps({"receivers": outcome, "details": details}, indent=2, sort_keys=True))
    else:
        for receiver, state in outcome.items():
            print(f"{receiver}: {state} ({'; '.join(details.get(receiver, [])) or 'no attempt'})")
    return 0 if all(state == "delivered" for state in outcome.values()) else 1


def _silence(args: argparse.Namespace) -> int:
    from ai_trading.monitoring.routing import parse_duration
    from ai_trading.monitoring.silences import SilenceStore

    duration = parse_duration(args.duration, "--duration")
    with _context(args) as context:
        silence = SilenceStore(context.engine).add(args.matcher, duration, args.author or getpass.getuser(), args.comment)
    if args.json:
        print(json.dumps(silence.to_dict(), indent=2, sort_keys=True))
    else:
        print(f"silence {silence.id} until {silence.ends_at.isoformat()}: {', '.join(str(m) for m in silence.matchers)}")
    return 0


def _silences(args: argparse.Namespace) -> int:
    from ai_trading.monitoring.silences import SilenceStore

    with _context(args) as context:
        store = SilenceStore(context.engine)
        found = store.all() if args.all else store.active()
    if args.json:
        print(json.dumps([s.to_dict() for s in found], indent=2, sort_keys=True))
        return 0
    if not found:
        print("no silences" + ("" if args.all else " in force"))
    for s in found:
        matchers = ", ".join(str(m) for m in s.matchers)
        print(f"{s.id}  {s.starts_at.isoformat()} -> {s.ends_at.isoformat()}  {matchers}  by {s.creator}: {s.comment}")
    return 0


def _unsilence(args: argparse.Namespace) -> int:
    from ai_trading.monitoring.silences import SilenceStore

    with _context(args) as context:
        silence = SilenceStore(context.engine).expire(args.silence_id)
    print(json.dumps(silence.to_dict(), indent=2, sort_keys=True) if args.json else f"silence {silence.id} expired")
    return 0


def _outbox(args: argparse.Namespace) -> int:
    from ai_trading.monitoring.outbox import Outbox

    with _context(args) as context:
        entries = Outbox(context.engine).entries()
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2, sort_keys=True))
        return 0
    if not entries:
        print("outbox empty: nothing pending or failed")
    for e in entries:
        error = f" last error: {e.last_error}" if e.last_error else ""
        print(f"{e.id} {e.status} {e.receiver} attempts {e.attempts} next {e.next_attempt_at.isoformat()} {e.payload.get('groupKey')}{error}")
    return 0


def _deliver(args: argparse.Namespace) -> int:
    with _context(args) as context:
        _, worker, _ = _worker(context)
        report = worker.run_once()
    _print_report(report, args.json)
    return 1 if report.failed else 0
