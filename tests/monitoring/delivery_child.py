"""A delivery worker process for the SIGKILL test: one pass over the outbox, real clock."""

from __future__ import annotations

import argparse

from ai_trading.config import AlertsConfig, OmsConfig
from ai_trading.monitoring.outbox import DeliveryWorker, Outbox
from ai_trading.monitoring.receivers import WebhookReceiver, WebhookSpec
from ai_trading.oms.engine import create_oms_engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    config = AlertsConfig(delivery_lease_s=1.0, receiver_timeout_s=30.0)
    engine = create_oms_engine(OmsConfig(dsn=args.dsn))
    receiver = WebhookReceiver("hook", WebhookSpec(args.url), config.receiver_timeout_s)
    report = DeliveryWorker(Outbox(engine), {"hook": receiver}, config).run_once()
    print(f"delivered {len(report.delivered)}", flush=True)


if __name__ == "__main__":
    main()
