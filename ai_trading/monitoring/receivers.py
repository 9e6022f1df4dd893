"""Receivers: where notifications go (a webhook over httpx, e-mail over SMTP, the kill switch).

A receiver sends one notification (the Alertmanager webhook payload, built by the
dispatcher and stored in the outbox) under its idempotency key, once, and classifies the
outcome for the delivery worker:

- ``DELIVERED``: a 2xx answer / the SMTP server accepted the message;
- ``RETRY``: 5xx, 429, timeouts, refused or dropped connections, SMTP 4xx: transient;
- ``REJECTED``: any other answer (4xx: the request itself is wrong, repeating it cannot
  help; SMTP 5xx, a refused login): never retried, and alerted locally.

Secrets (a webhook's bearer token, the SMTP password) are read from an environment
variable or a file when the receiver is built, sent only on the wire, and never logged,
stored in the outbox or shown in an error. A webhook's URL is not stored in the outbox
either (chat webhooks carry their token in the path): it stays in the routes file.

A kill-switch receiver (``[receivers.kill_switch]``) is no delivery target: the
dispatcher hands it firing alerts at once, bypassing grouping and the outbox, and it
sets the account's trading state (:mod:`ai_trading.monitoring.kill_switch`).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx

from ai_trading.errors import ConfigError
from ai_trading.http_retry import RETRY_STATUS, retry_after_s

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# Alertmanager's defaults of send_resolved: true for webhooks, false for e-mail.
WEBHOOK_SEND_RESOLVED = True
EMAIL_SEND_RESOLVED = False


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt achieved; ``detail`` never holds a secret or a URL."""

    outcome: Outcome
    detail: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class WebhookSpec:
    url: str
    bearer_token_env: str | None = None
    bearer_token_file: Path | None = None


@dataclass(frozen=True)
class EmailSpec:
    to: tuple[str, ...]
    sender: str
    host: str
    port: int
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None


@dataclass(frozen=True)
class KillSwitchSpec:
    """:param account: the account it halts (None: ``[risk] account``)"""

    account: str | None = None


@dataclass(frozen=True)
class ReceiverSpec:
    """A named receiver of the routes file: exactly one of ``webhook``, ``email`` and ``kill_switch``."""

    name: str
    send_resolved: bool
    webhook: WebhookSpec | None = None
    email: EmailSpec | None = None
    kill_switch: KillSwitchSpec | None = None


def parse_receiver(table: Mapping[str, Any], where: str) -> ReceiverSpec:
    name = table.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: needs a name")
    where = f"{where} ({name})"
    kinds = {"webhook", "email", "kill_switch"}
    unknown = set(table) - {"name", *kinds}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; a receiver has name and one [webhook], [email] or [kill_switch]")
    if len(kinds & set(table)) != 1:
        raise ConfigError(f"{where}: needs exactly one of [receivers.webhook], [receivers.email] and [receivers.kill_switch]")
    if "kill_switch" in table:
        k = dict(table["kill_switch"])
        account = k.pop("account", None)
        _no_more(k, where)
        if account is not None and (not isinstance(account, str) or not account):
            raise ConfigError(f"{where}: kill_switch account must be a non-empty string")
        return ReceiverSpec(name, False, kill_switch=KillSwitchSpec(account))
    try:
        if "webhook" in table:
            w = dict(table["webhook"])
            send_resolved = bool(w.pop("send_resolved", WEBHOOK_SEND_RESOLVED))
            spec = WebhookSpec(
                url=str(w.pop("url")),
                bearer_token_env=w.pop("bearer_token_env", None),
                bearer_token_file=_path(w.pop("bearer_token_file", None)),
            )
            if not spec.url.startswith(("http://", "https://")):
                raise ConfigError(f"{where}: webhook url must start with http:// or https://")
            _no_more(w, where)
            return ReceiverSpec(name, send_resolved, webhook=spec)
        e = dict(table["email"])
        send_resolved = bool(e.pop("send_resolved", EMAIL_SEND_RESOLVED))
        to = e.pop("to")
        email = EmailSpec(
            to=(to,) if isinstance(to, str) else tuple(str(t) for t in to),
            sender=str(e.pop("from")),
            host=str(e.pop("host")),
            port=int(e.pop("port")),
            starttls=bool(e.pop("starttls", False)),
            username=e.pop("username", None),
            password_env=e.pop("password_env", None),
            password_file=_path(e.pop("password_file", None)),
            ca_file=_path(e.pop("ca_file", None)),
        )
        _no_more(e, where)
    except KeyError as exc:
        raise ConfigError(f"{where}: missing {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if email.username and not (email.password_env or email.password_file):
        raise ConfigError(f"{where}: username given without password_env or password_file")
    return ReceiverSpec(name, send_resolved, email=email)


def _path(value: Any) -> Path | None:
    return None if value is None else Path(os.path.expanduser(str(value)))


def _no_more(rest: Mapping[str, Any], where: str) -> None:
    if rest:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(rest))}")


def read_secret(env: str | None, file: Path | None, what: str, environ: Mapping[str, str]) -> str | None:
    """The secret from the environment variable ``env`` or else the file ``file`` (its
    text without the trailing newline); None when neither is configured."""
    if env:
        value = environ.get(env)
        if not value:
            raise ConfigError(f"{what}: environment variable {env} is not set (or empty)")
        return value
    if file is not None:
        try:
            value = file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{what}: cannot read secret file {file}: {exc.strerror}") from exc
        if not value:
            raise ConfigError(f"{what}: secret file {file} is empty")
        return value
    return None


class Receiver(Protocol):
    name: str

    def send(self, payload: Mapping[str, Any], idempotency_key: str) -> DeliveryResult:
        """One attempt; never raises for a delivery failure (it classifies it)."""
        ...


@dataclass
class WebhookReceiver:
    """POSTs the payload as JSON with ``Idempotency-Key`` (and a bearer token when configured).

    :param timeout_s: connect, read and write timeout of the request
    """

    name: str
    spec: WebhookSpec
    timeout_s: float
    token: str | None = field(default=None, repr=False)

    def send(self, payload: Mapping[str, Any], idempotency_key: str) -> DeliveryResult:
        headers = {IDEMPOTENCY_HEADER: idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            with httpx.Client(timeout=self.timeout_s) as client:
                response = client.post(self.spec.url, json=dict(payload), headers=headers)
        except httpx.TransportError as exc:  # timeouts, refused and dropped connections
            return DeliveryResult(Outcome.RETRY, type(exc).__name__)
        status = response.status_code
        if 200 <= status < 300:
            return DeliveryResult(Outcome.DELIVERED, f"HTTP {status}")
        if status in RETRY_STATUS or status >= 500:
            return DeliveryResult(Outcome.RETRY, f"HTTP {status}", retry_after_s(response))
        return DeliveryResult(Outcome.REJECTED, f"HTTP {status}: {response.text[:200]}")


@dataclass
class EmailReceiver:
    """Sends a plain-text message over SMTP; the ``Message-ID`` is derived from the
    idempotency key, so a mail system can drop a resent copy.

    :param timeout_s: socket timeout of the SMTP session
    """

    name: str
    spec: EmailSpec
    timeout_s: float
    password: str | None = field(default=None, repr=False)

    def send(self, payload: Mapping[str, Any], idempotency_key: str) -> DeliveryResult:
        message = email_message(payload, idempotency_key, self.spec)
        try:
            with smtplib.SMTP(self.spec.host, self.spec.port, timeout=self.timeout_s) as smtp:
                if self.spec.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.spec.ca_file))
                if self.spec.username:
                    smtp.login(self.spec.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            transient = all(400 <= code < 500 for code in codes)
            return DeliveryResult(Outcome.RETRY if transient else Outcome.REJECTED, f"SMTP recipients refused: {codes}")
        except smtplib.SMTPResponseException as exc:  # includes a refused login (535)
            outcome = Outcome.RETRY if 400 <= exc.smtp_code < 500 else Outcome.REJECTED
            return DeliveryResult(outcome, f"SMTP {exc.smtp_code}")
        except smtplib.SMTPNotSupportedError as exc:
            return DeliveryResult(Outcome.REJECTED, f"SMTP server does not support {exc}")
        except ssl.SSLError as exc:
            return DeliveryResult(Outcome.REJECTED, f"TLS: {exc.reason}")
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, timeouts, refused connections
            return DeliveryResult(Outcome.RETRY, type(exc).__name__)
        return DeliveryResult(Outcome.DELIVERED, "SMTP 250")


def email_message(payload: Mapping[str, Any], idempotency_key: str, spec: EmailSpec) -> EmailMessage:
    alerts = payload.get("alerts", [])
    firing = sum(1 for a in alerts if a["status"] == "firing")
    names = ", ".join(sorted({a["labels"].get("alertname", "") for a in alerts}))
    message = EmailMessage()
    message["Subject"] = f"[{str(payload['status']).upper()}:{firing}] {names}"
    message["From"] = spec.sender
    message["To"] = ", ".join(spec.to)
    message["Message-ID"] = f"<{idempotency_key}@ai-trading>"
    message["X-Idempotency-Key"] = idempotency_key
    lines = [f"Group: {payload['groupKey']}", f"Receiver: {payload['receiver']}", ""]
    for alert in alerts:
        labels = ", ".join(f"{k}={v}" for k, v in alert["labels"].items())
        lines.append(f"[{alert['status']}] {labels}")
        lines.extend(f"  {k}: {v}" for k, v in alert["annotations"].items())
        lines.append(f"  since {alert['startsAt']}")
    if payload.get("externalURL"):
        lines.extend(["", str(payload["externalURL"])])
    message.set_content("\n".join(lines) + "\n")
    return message


def build_receiver(spec: ReceiverSpec, timeout_s: float, environ: Mapping[str, str] | None = None) -> Receiver:
    """The receiver of ``spec`` with its secret read now (a missing one is a ConfigError)."""
    environ = os.environ if environ is None else environ
    what = f"receiver {spec.name}"
    if spec.kill_switch is not None:
        raise ConfigError(
            f"{what} is a kill switch: it acts in the dispatcher, never through the outbox "
            "(build it with ai_trading.monitoring.kill_switch.KillSwitch and pass it to Dispatcher(actions=...))"
        )
    if spec.webhook is not None:
        token = read_secret(spec.webhook.bearer_token_env, spec.webhook.bearer_token_file, what, environ)
        return WebhookReceiver(spec.name, spec.webhook, timeout_s, token)
    assert spec.email is not None
    password = read_secret(spec.email.password_env, spec.email.password_file, what, environ)
    return EmailReceiver(spec.name, spec.email, timeout_s, password)
