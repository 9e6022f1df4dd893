"""Broker adapters implementing :class:`ai_trading.oms.broker.Broker`."""

from ai_trading.brokers.alpaca import AlpacaBroker
from ai_trading.brokers.sim import SimBroker

__all__ = ["AlpacaBroker", "SimBroker"]
