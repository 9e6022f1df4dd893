"""E-mail delivery against a local aiosmtpd server, plain and with STARTTLS and login."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ai_trading.monitoring.receivers import (
    EmailReceiver,
    EmailSpec,
    Outcome,
    build_receiver,
    parse_receiver,
)
from tests.monitoring.helpers import FakeClock, free_port
from tests.monitoring.test_outbox import notifications

PASSWORD = "smtp-pa55word"


class Collect:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"bot" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def plain_server() -> Iterator[tuple[Collect, int]]:
    handler, port = Collect(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Collect, int, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler, port = Collect(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        authenticator=authenticator, auth_require_tls=True, auth_required=True,
    )  # fmt: skip
    controller.start()
    yield handler, port, cert
    controller.stop()


def spec(port: int, **extra: Any) -> EmailSpec:
    return EmailSpec(to=("ops@example.com",), sender="bot@example.com", host="127.0.0.1", port=port, **extra)


def test_plain_smtp_delivers_with_the_idempotency_key_as_message_id(plain_server: tuple[Collect, int]) -> None:
    handler, port = plain_server
    [n] = notifications(FakeClock(), 1)
    result = EmailReceiver("mail", spec(port), 5.0).send(n.payload, n.idempotency_key)
    assert result.outcome is Outcome.DELIVERED
    [(rcpt, message)] = handler.messages
    assert rcpt == ["ops@example.com"]
    assert "".join(message["Message-ID"].split()) == f"<{n.idempotency_key}@ai-trading>"
    assert message["X-Idempotency-Key"].strip() == n.idempotency_key
    assert message["Subject"] == "[FIRING:1] CostSpike"
    assert "symbol=S0" in message.get_payload()


def test_starttls_and_login(tls_server: tuple[Collect, int, Path], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    handler, port, cert = tls_server
    [n] = notifications(FakeClock(), 1)
    table = {"name": "mail", "email": {"to": "ops@example.com", "from": "bot@example.com", "host": "127.0.0.1", "port": port,
                                       "starttls": True, "username": "bot", "password_env": "SMTP_PW", "ca_file": str(cert)}}  # fmt: skip
    receiver = build_receiver(parse_receiver(table, "test"), 5.0, environ={"SMTP_PW": PASSWORD})
    assert receiver.send(n.payload, n.idempotency_key).outcome is Outcome.DELIVERED
    assert len(handler.messages) == 1
    assert PASSWORD not in caplog.text and PASSWORD not in repr(receiver)


def test_wrong_password_is_refused_not_retried(tls_server: tuple[Collect, int, Path]) -> None:
    handler, port, cert = tls_server
    [n] = notifications(FakeClock(), 1)
    receiver = EmailReceiver("mail", spec(port, starttls=True, username="bot", ca_file=cert), 5.0, "wrong")
    result = receiver.send(n.payload, n.idempotency_key)
    assert (result.outcome, result.detail) == (Outcome.REJECTED, "SMTP 535")
    assert handler.messages == []


def test_without_starttls_a_server_requiring_it_refuses(tls_server: tuple[Collect, int, Path]) -> None:
    handler, port, _ = tls_server
    [n] = notifications(FakeClock(), 1)
    result = EmailReceiver("mail", spec(port), 5.0).send(n.payload, n.idempotency_key)
    assert result.outcome is Outcome.REJECTED and handler.messages == []


def test_unreachable_smtp_server_is_retried() -> None:
    [n] = notifications(FakeClock(), 1)
    result = EmailReceiver("mail", spec(free_port()), 2.0).send(n.payload, n.idempotency_key)
    assert result.outcome is Outcome.RETRY
