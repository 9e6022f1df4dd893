"""The one exception hierarchy of ai-trading.

Every error a user can trigger is an :class:`AiTradingError`; its message says what is
wrong and how to fix it. Library errors are re-raised as these with ``from exc``.
"""

from __future__ import annotations


class AiTradingError(Exception):
    """Base of every domain error raised by ai-trading."""


class ConfigError(AiTradingError):
    """A configuration file or environment variable is malformed or out of range."""


class DataValidationError(AiTradingError):
    """Input market data breaks a rule; names the source, the row and the rule."""

    def __init__(self, source: str, row: int | None, rule: str, detail: str = "") -> None:
        self.source = source
        self.row = row
        self.rule = rule
        where = f"{source}" if row is None else f"{source}, row {row}"
        message = f"{where}: {rule}"
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)


class UnknownSymbolError(AiTradingError):
    """A symbol was asked for that the store or panel does not hold."""


class DataStoreError(AiTradingError):
    """The market-data store cannot be opened or written (locked, corrupt, unwritable)."""


class DataSourceError(AiTradingError):
    """A market-data source (a broker's data API) refused a request, cannot be reached, or
    answered in a shape we cannot read; nothing from it was written."""


class DataConflictError(AiTradingError):
    """Incoming bars would change bars already stored, or collide with each other."""


class OrderValidationError(AiTradingError):
    """An order batch is malformed: negative quantity, unknown symbol, bad limit, ..."""


class DatabaseUnavailable(AiTradingError):
    """The OMS database cannot be reached or used (server down, login refused, unreadable file)."""


class StoreNotMigrated(AiTradingError):
    """The database is not at the latest Alembic revision."""


class MigrationError(AiTradingError):
    """A schema migration could not run (unknown revision, failed step)."""


class IllegalTransition(AiTradingError):
    """An intent state change that the OMS transition table forbids."""


class ConcurrencyConflict(AiTradingError):
    """An optimistic-concurrency guard failed: another writer changed the row first."""


class OverfillError(AiTradingError):
    """A fill would take an intent's cumulative filled quantity above its order quantity."""


class IntentConflict(AiTradingError):
    """An intent (or fill) with this id is already stored with different fields."""


class UnknownIntent(AiTradingError):
    """No intent with this client_order_id is stored."""


class ClientOrderIdError(AiTradingError):
    """A CIDv2 client_order_id (or one of its fields) is malformed."""


class DuplicateOrderError(AiTradingError):
    """The broker already holds an order with this client_order_id."""


class BrokerError(AiTradingError):
    """The broker refused a request or answered in a way the adapter cannot use."""


class UnknownOutcomeError(BrokerError):
    """A request may or may not have reached the broker; resolve by looking it up."""


class OrderRejected(BrokerError):
    """The broker definitively refused an order (invalid, no buying power, ...); it does not exist there."""


class ReconciliationError(AiTradingError):
    """Start-up reconciliation failed; trading stays blocked until it succeeds."""


class TradingBlocked(AiTradingError):
    """New orders are refused: reconciliation has not passed or the kill switch is on."""


class FlattenRefused(AiTradingError):
    """A flatten order was refused: it would not close an existing position exactly to
    zero (or open orders in the symbol must be canceled first); nothing was sent."""


class AdoptionRefused(AiTradingError):
    """Adopting broker positions into the OMS was refused (already adopted, OMS fills or
    open intents in the symbol, nothing to adopt); nothing was written."""


class StartupGateFailed(AiTradingError):
    """A trading loop's start-up gate did not pass (configuration, database, broker,
    reconciliation, model, history); ``gate`` names it. Nothing was traded."""

    def __init__(self, gate: str, message: str) -> None:
        super().__init__(f"start-up gate '{gate}' failed: {message}")
        self.gate = gate


class ProvenanceError(AiTradingError):
    """Feature schema hash, dataset fingerprint or file digests do not match."""


class FeatureSchemaMismatch(ProvenanceError):
    """A model was trained on features with another schema than the current builder's."""


class DatasetFingerprintMismatch(ProvenanceError):
    """A model was trained or evaluated on other data than the caller requires."""


class SignatureError(AiTradingError):
    """A manifest signature is missing, invalid, or made with an untrusted key."""


class RollbackError(AiTradingError):
    """A manifest older than the last accepted version of that model was presented."""


class RegistryError(AiTradingError):
    """The model registry refuses an operation: unknown model, nothing to roll back to,
    an unreadable state file or a damaged stored copy."""


class PromotionRejected(RegistryError):
    """The promotion gate rejected a training run; ``rejections`` holds the machine-readable
    reasons (``code``, ``metric``, ``value``, ``threshold`` each)."""

    def __init__(self, message: str, rejections: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.rejections = rejections


class EvaluationError(AiTradingError, ValueError):
    """Evaluation input is unusable: bad split parameters, NaN returns, too few samples."""


class MissingDependencyError(AiTradingError):
    """An optional dependency is not installed; names the extra that provides it."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is not installed: install the '{extra}' extra "
            f"(pip install 'ai-trading[{extra}]')"
        )
