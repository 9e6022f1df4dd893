"""AlpacaBroker against a local HTTP server speaking Alpaca's documented JSON."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
from tests.brokers.alpaca_server import KEY_ID, SECRET_KEY, FakeAlpaca

from ai_trading.brokers.alpaca import AlpacaBroker
from ai_trading.config import AlpacaConfig, load_config
from ai_trading.errors import BrokerError, ConfigError, DuplicateOrderError, OrderRejected, UnknownOutcomeError
from ai_trading.oms.broker import Broker, BrokerOrderStatus, OrderRequest

TIMEOUT_S = 0.3
RETRIED_STATUSES = (500, 502, 503, 504, 429)
UNKNOWN_OUTCOME_FAULTS = ("status:500", "status:503", "accept_then_drop", "accept_then_sleep:1.0")


@pytest.fixture()
def server() -> Iterator[FakeAlpaca]:
    with FakeAlpaca() as running:
        yield running


@pytest.fixture()
def broker(server: FakeAlpaca) -> Iterator[AlpacaBroker]:
    config = AlpacaConfig(
        base_url=server.base_url, key_id=KEY_ID, secret_key=SECRET_KEY, timeout_s=TIMEOUT_S, retry_backoff_s=0.01
    )
    with AlpacaBroker(config) as adapter:
        yield adapter


def _request(cid: str = "CIDv2:s:AAPL:buy:20240102:1d:abc123:10:1", qty: str = "10") -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol="AAPL", side="buy", qty=Decimal(qty))


def test_satisfies_the_broker_protocol(broker: AlpacaBroker) -> None:
    assert isinstance(broker, Broker)


def test_credentials_come_from_the_alpaca_environment_variables() -> None:
    environ = {"APCA_API_KEY_ID": "KEY-42", "APCA_API_SECRET_KEY": "SECRET-42", "APCA_API_BASE_URL": "http://x"}
    config = load_config(environ=environ)
    assert (config.alpaca.key_id, config.alpaca.secret_key, config.alpaca.base_url) == ("KEY-42", "SECRET-42", "http://x")
    assert "KEY-42" not in repr(config) and "SECRET-42" not in repr(config)
    assert load_config(environ={}).alpaca.base_url == "https://paper-api.alpaca.markets"


def test_missing_credentials_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID"):
        AlpacaBroker(AlpacaConfig(key_id="", secret_key=""))


def test_submit_then_look_up_list_and_cancel(broker: AlpacaBroker, server: FakeAlpaca) -> None:
    order = broker.submit(_request())
    assert order.client_order_id == _request().client_order_id
    assert order.status is BrokerOrderStatus.NEW and order.qty == Decimal(10) and order.filled_qty == 0
    assert broker.get_order(order.client_order_id) == order
    assert [o.broker_order_id for o in broker.list_open_orders()] == [order.broker_order_id]
    broker.cancel(order.broker_order_id)
    looked_up = broker.get_order(order.client_order_id)
    assert looked_up is not None and looked_up.status is BrokerOrderStatus.CANCELED
    assert broker.list_open_orders() == []
    with pytest.raises(BrokerError, match="not cancelable"):
        broker.cancel(order.broker_order_id)


def test_unknown_client_order_id_is_none(broker: AlpacaBroker) -> None:
    assert broker.get_order("CIDv2:never:sent") is None


def test_duplicate_client_order_id_is_refused_with_422(broker: AlpacaBroker, server: FakeAlpaca) -> None:
    broker.submit(_request())
    with pytest.raises(DuplicateOrderError, match="client_order_id"):
        broker.submit(_request())
    assert len(server.state.orders) == 1


def test_other_422_is_a_rejection_not_a_duplicate(broker: AlpacaBroker, server: FakeAlpaca) -> None:
    server.fault("POST", "/v2/orders", "status:403")
    with pytest.raises(OrderRejected, match="403"):
        broker.submit(_request())


@pytest.mark.parametrize("fault", UNKNOWN_OUTCOME_FAULTS)
def test_submit_is_never_retried_and_an_unknown_outcome_is_resolved_by_lookup(
    broker: AlpacaBroker, server: FakeAlpaca, fault: str
) -> None:
    server.fault("POST", "/v2/orders", fault)
    with pytest.raises(UnknownOutcomeError, match="client_order_id"):
        broker.submit(_request())
    assert server.count("POST", "/v2/orders") == 1
    arrived = broker.get_order(_request().client_order_id)
    # 5xx here means the server did not create it; the accept-then-fail faults did.
    assert (arrived is not None) == fault.startswith("accept")
    if arrived is None:
        assert broker.submit(_request()).client_order_id == _request().client_order_id
    else:
        with pytest.raises(DuplicateOrderError):
            broker.submit(_request())
    assert len(server.state.orders) == 1


def test_unreachable_server_is_not_sent_rather_than_unknown() -> None:
    with FakeAlpaca() as server:
        base_url = server.base_url
    config = AlpacaConfig(base_url=base_url, key_id=KEY_ID, secret_key=SECRET_KEY, timeout_s=TIMEOUT_S, max_retries=0)
    with AlpacaBroker(config) as adapter, pytest.raises(BrokerError, match="not sent") as raised:
        adapter.submit(_request())
    assert not isinstance(raised.value, UnknownOutcomeError)


@pytest.mark.parametrize("status", RETRIED_STATUSES)
def test_safe_requests_are_retried_after_5xx_and_429(broker: AlpacaBroker, server: FakeAlpaca, status: int) -> None:
    broker.submit(_request())
    server.fault("GET", "/v2/orders:by_client_order_id", f"status:{status}")
    server.fault("GET", "/v2/orders:by_client_order_id", f"status:{status}")
    assert broker.get_order(_request().client_order_id) is not None
    assert server.count("GET", "/v2/orders:by_client_order_id") == 3


def test_safe_requests_are_retried_after_a_timeout(broker: AlpacaBroker, server: FakeAlpaca) -> None:
    server.fault("GET", "/v2/positions", f"sleep:{TIMEOUT_S * 3}")
    assert broker.positions() == []
    assert server.count("GET", "/v2/positions") == 2


def test_retries_give_up_with_a_broker_error(broker: AlpacaBroker, server: FakeAlpaca) -> None:
    for _ in range(4):
        server.fault("GET", "/v2/orders", "status:503")
    with pytest.raises(BrokerError, match="after 4 attempts"):
        broker.list_open_orders()


def test_fills_and_positions_follow_executions(broker: AlpacaBroker, server: FakeAlpaca) -> None:
    buy = broker.submit(_request(qty="10"))
    sell = broker.submit(OrderRequest(client_order_id="c2", symbol="MSFT", side="sell", qty=Decimal(4)))
    server.state.execute(buy.broker_order_id, "6", "100.5")
    server.state.execute(buy.broker_order_id, "4", "101")
    server.state.execute(sell.broker_order_id, "4", "50.25")
    fills = broker.list_fills()
    assert [(f.broker_order_id, f.qty, f.price) for f in fills] == [
        (buy.broker_order_id, Decimal(6), Decimal("100.5")),
        (buy.broker_order_id, Decimal(4), Decimal(101)),
        (sell.broker_order_id, Decimal(4), Decimal("50.25")),
    ]
    recent = broker.list_fills(since=fills[2].ts)
    assert fills[2] in recent and all(fill.ts >= fills[2].ts for fill in recent)
    assert {p.symbol: p.qty for p in broker.positions()} == {"AAPL": Decimal(10), "MSFT": Decimal(-4)}
    done = broker.get_order(buy.client_order_id)
    assert done is not None and done.status is BrokerOrderStatus.FILLED
    assert done.filled_avg_price == Decimal("100.7")


def test_fills_are_paged(broker: AlpacaBroker, server: FakeAlpaca) -> None:
    order = broker.submit(_request(qty="250"))
    for _ in range(250):
        server.state.execute(order.broker_order_id, "1", "10")
    fills = broker.list_fills()
    assert len(fills) == 250 and len({f.fill_id for f in fills}) == 250
    assert server.count("GET", "/v2/account/activities/FILL") == 3


def test_secrets_never_reach_the_logs(
    broker: AlpacaBroker, server: FakeAlpaca, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.fault("GET", "/v2/positions", "status:503")
    broker.submit(_request())
    broker.positions()
    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "ALPACA_ORDER_SUBMITTED" in logged and "ALPACA_REQUEST_RETRY" in logged
    assert SECRET_KEY not in logged and KEY_ID not in logged
