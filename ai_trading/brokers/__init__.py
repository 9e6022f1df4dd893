"""Broker adapters implementing :class:`ai_trading.oms.broker.Broker`."""

from ai_trading.brokers.alpaca import AlpacaBroker

__all__ = ["AlpacaBroker"]
