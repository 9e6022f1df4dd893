"""Configuration: frozen dataclasses per component, loaded from TOML and the environment.

Defaults live here and nowhere else. Precedence (lowest to highest): these defaults, a
TOML file (``--config FILE`` or ``AI_TRADING_CONFIG``), then environment variables
``AI_TRADING_<SECTION>__<FIELD>`` (e.g. ``AI_TRADING_EXECUTION__FEE_BPS=0.5``) and the
named shortcuts in :data:`ENV_SHORTCUTS` (``AI_TRADING_DATA_DB``, ``AI_TRADING_OMS_DSN``).
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

import platformdirs

from ai_trading.errors import ConfigError

APP_NAME = "ai-trading"


def default_cache_dir() -> Path:
    """Per-user cache directory (``~/.cache/ai-trading`` on Linux)."""
    return Path(platformdirs.user_cache_dir(APP_NAME))


@dataclass(frozen=True)
class DataConfig:
    """Market-data store.

    :param db_path: DuckDB file holding the ``bars`` table
    :param synthetic_seed: seed of the built-in data set generator
    :param synthetic_symbols: symbols in the built-in data set (three liquidity tiers)
    :param synthetic_daily_bars: daily bars per symbol (2520 business days, about 10 years)
    :param synthetic_minute_bars: 1-minute bars per symbol (20 sessions of 390 bars)
    """

    db_path: Path = field(default_factory=lambda: default_cache_dir() / "market.duckdb")
    synthetic_seed: int = 7
    synthetic_symbols: int = 40
    synthetic_daily_bars: int = 2520
    synthetic_minute_bars: int = 7800


@dataclass(frozen=True)
class ExecutionConfig:
    """Execution simulator cost parameters (see DESIGN.md, execution model).

    :param seed: seed of the counter-based generator; a seeded run is bit-identical
    :param latency_median_ms: median order latency. 50 ms is a typical retail/API
        round trip to a US equity venue (broker gateway plus exchange)
    :param latency_sigma: lognormal shape of the latency (sigma of log-latency); 0 makes it
        constant
    :param spread_floor_bps: smallest modeled spread, used when the data has no spread
    :param spread_vol_mult: modeled spread grows by this many bps per bp of per-bar
        volatility (spreads widen with volatility: Roll 1984; Corwin and Schultz 2012)
    :param tick_size: price increment; a spread is never below one tick
    :param slippage_base_bps: fixed slippage per fill, bps of the reference price
    :param slippage_vol_coef: slippage per bp of per-bar volatility (timing risk term)
    :param impact_eta: coefficient of the size/participation impact
        ``eta * sigma_bps * participation**beta``; order 1 per the square-root law
        (Toth et al. 2011; Almgren et al. 2005 fit beta ~ 0.6)
    :param impact_beta: exponent of participation in the impact term, 0.5 = square root
    :param slippage_noise_bps: standard deviation of the zero-mean random slippage term;
        0 turns randomness in prices off
    :param max_participation: at most this fraction of a bar's volume fills per order per
        bar (0..1]; 0.1 is a common POV cap for liquidity-seeking algorithms
    :param tif_bars: default time in force in bars from arrival; the remainder is canceled
    :param fee_bps: fee in bps of notional (e.g. exchange and regulatory fees)
    :param fee_per_share: fee per share (0.0035 USD: Interactive Brokers Pro fixed rate)
    :param fee_min: minimum fee per order that fills (0.35 USD: Interactive Brokers Pro)
    :param vol_halflife_bars: half-life of the EWMA volatility estimate, in bars
    :param use_data_spread: price the spread from the data's ``spread_bps`` where present;
        False always uses the learned or modeled spread
    """

    seed: int = 0
    latency_median_ms: float = 50.0
    latency_sigma: float = 0.5
    spread_floor_bps: float = 1.0
    spread_vol_mult: float = 0.1
    tick_size: float = 0.01
    slippage_base_bps: float = 0.5
    slippage_vol_coef: float = 0.05
    impact_eta: float = 1.0
    impact_beta: float = 0.5
    slippage_noise_bps: float = 1.0
    max_participation: float = 0.1
    tif_bars: int = 10
    fee_bps: float = 0.0
    fee_per_share: float = 0.0035
    fee_min: float = 0.35
    vol_halflife_bars: float = 20.0
    use_data_spread: bool = True


@dataclass(frozen=True)
class CostModelConfig:
    """Per-symbol EWMA cost model.

    :param halflife_fills: half-life of the EWMAs, counted in fill observations
    :param min_observations: effective observations before a symbol's estimates replace
        the simulator's configured parameters
    :param state_path: where the state is persisted (Arrow IPC); None keeps it in memory
    """

    halflife_fills: float = 200.0
    min_observations: float = 20.0
    state_path: Path | None = None


@dataclass(frozen=True)
class OmsConfig:
    """Order management system.

    :param dsn: SQLAlchemy/libpq URL of the intent store; PostgreSQL in production,
        a local SQLite file by default for local runs
    :param sqlite_busy_timeout_s: how long a SQLite writer waits for another process's
        write lock before failing (SQLite allows one writer at a time)
    """

    dsn: str = field(default_factory=lambda: f"sqlite:///{default_cache_dir() / 'oms.sqlite'}")
    sqlite_busy_timeout_s: float = 30.0


@dataclass(frozen=True)
class BrokerConfig:
    """Which broker the OMS trades through, and the paper broker's own state.

    :param kind: ``sim`` (the paper SimBroker on the execution simulator) or ``alpaca``
    :param sim_db_path: SQLite file holding the SimBroker's orders, fills and clock; it is
        the broker's durable state, separate from the OMS tables
    """

    kind: str = "sim"
    sim_db_path: Path = field(default_factory=lambda: default_cache_dir() / "sim_broker.sqlite")


@dataclass(frozen=True)
class ManagerConfig:
    """Order manager and reconciliation.

    :param resend_grace_s: a SUBMITTED intent the broker does not know is resent (under the
        same client_order_id) only once it has been unchanged this long, so a send still in
        flight in another live process is not raced; 0 when no other process can be sending
    :param position_checks: how many times reconciliation re-reads fills and positions
        before reporting a position mismatch (fills may land between the two reads)
    """

    resend_grace_s: float = 10.0
    position_checks: int = 3


@dataclass(frozen=True)
class AlpacaConfig:
    """Alpaca Trading API v2 (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``, ``APCA_API_BASE_URL``).

    :param base_url: API root; the paper endpoint unless live trading is meant
    :param key_id: API key id (never logged)
    :param secret_key: API secret (never logged)
    :param timeout_s: per-request timeout (connect, read and write), seconds
    :param max_retries: extra attempts for safe requests (GET, DELETE) after a transport
        error, 429 or 5xx; an order submission (POST) is never retried
    :param retry_backoff_s: first backoff between retries, doubled on each attempt
    """

    base_url: str = "https://paper-api.alpaca.markets"
    key_id: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    timeout_s: float = 10.0
    max_retries: int = 3
    retry_backoff_s: float = 0.25


@dataclass(frozen=True)
class ArtifactsConfig:
    """Signed model artifacts: where keys come from and where rollback state is kept.

    :param signing_key_path: the private key ``ai-trading manifest sign`` uses (Ed25519
        PKCS8 PEM or an HMAC key file), written by ``ai-trading keys generate``
    :param signing_key_env: environment variable that may hold the signing key's text;
        when it is set it is used instead of ``signing_key_path``
    :param trusted_keys_dir: directory of verification keys a manifest may be signed
        with (``*.pub`` Ed25519 public keys, ``*.hmac`` HMAC keys)
    :param trusted_key_env: environment variable that may hold one more trusted key's text
    :param trust_state_path: JSON file remembering the last accepted version of each
        model, so an older validly signed manifest is refused (rollback protection)
    :param registry_dir: the model registry: current and previous model of each name,
        their stored copies and the audit log (``ai-trading registry``)
    """

    signing_key_path: Path = field(default_factory=lambda: default_cache_dir() / "keys" / "signing.key")
    signing_key_env: str = "AI_TRADING_SIGNING_KEY"
    trusted_keys_dir: Path = field(default_factory=lambda: default_cache_dir() / "keys" / "trusted")
    trusted_key_env: str = "AI_TRADING_TRUSTED_KEY"
    trust_state_path: Path = field(default_factory=lambda: default_cache_dir() / "artifact_trust_state.json")
    registry_dir: Path = field(default_factory=lambda: default_cache_dir() / "registry")


@dataclass(frozen=True)
class RLEnvConfig:
    """The portfolio RL environment (``ai_trading.rl_trading.env``).

    :param episode_length: steps (bars) before an episode is truncated; 252 = a trading year
        of daily bars
    :param leverage_limit: gross leverage limit; actions in [-1, 1] per asset are fractions
        of it, scaled down so absolute weights sum to at most the limit
    :param initial_cash: equity at the start of every episode, currency
    :param max_drawdown: drawdown from the episode's peak equity that terminates it (0..1]
    :param drawdown_penalty: reward penalty per unit of current drawdown, per step
    :param turnover_budget: traded notional / equity per step allowed without penalty
    :param turnover_penalty: reward penalty per unit of turnover beyond the budget
    :param leverage_penalty: reward penalty per unit of gross leverage beyond the limit
        (prices move after a rebalance, so the book can drift past it)
    """

    episode_length: int = 252
    leverage_limit: float = 1.0
    initial_cash: float = 1_000_000.0
    max_drawdown: float = 0.25
    drawdown_penalty: float = 0.0
    turnover_budget: float = 0.2
    turnover_penalty: float = 0.001
    leverage_penalty: float = 0.01


@dataclass(frozen=True)
class RLTrainConfig:
    """Multi-seed RL training (``ai-trading train``, ``ai_trading.rl_trading.train``).

    Bars before ``train_end`` train, ``[train_end, validation_end)`` selects the checkpoint,
    and ``[validation_end, end)`` is the held-out test range neither of them sees.

    :param algo: stable-baselines3 algorithm: ``ppo``, ``a2c``, ``sac`` or ``td3``
    :param seeds: independent runs, seeds ``first_seed .. first_seed + seeds - 1``
    :param first_seed: the first seed
    :param timesteps: environment steps per seed
    :param n_envs: environments stepped together in one VecPortfolioEnv
    :param checkpoints: validation evaluations during training; the best one is kept
    :param workers: parallel seed processes; 0 uses every core (at most one per seed)
    :param symbols: comma-separated symbols from the data store; empty = all
    :param start: first bar time (ISO date); empty = the store's first bar
    :param train_end: end of the training range (exclusive), ISO date
    :param validation_end: end of the validation range (exclusive), ISO date
    :param end: end of the test range (exclusive), ISO date; empty = the last bar
    :param model_name: artifacts are named ``<model_name>.seed<seed>``
    :param model_version: manifest version of this release (>= 1, increasing per name)
    """

    algo: str = "ppo"
    seeds: int = 10
    first_seed: int = 0
    timesteps: int = 200_000
    n_envs: int = 16
    checkpoints: int = 5
    workers: int = 0
    symbols: str = ""
    start: str = ""
    train_end: str = "2021-01-01"
    validation_end: str = "2023-01-01"
    end: str = ""
    model_name: str = "rl-portfolio"
    model_version: int = 1


@dataclass(frozen=True)
class PromotionCriteria:
    """When a multi-seed RL run may be promoted (``ai_trading.rl.governance``); every
    statistic is over the seeds' out-of-sample (test range) results.

    :param min_seeds: seeds required; 10 by default for promotion, never fewer than 5
    :param min_mean_sharpe: mean annualised net Sharpe across seeds must reach this
    :param max_sharpe_std: standard deviation (ddof=1) of Sharpe across seeds must stay below
    :param max_drawdown: the worst seed's max drawdown (a positive fraction) must stay below
    :param min_turnover: mean annualised two-sided turnover must be at least this (a policy
        that never trades has learned nothing to promote)
    :param max_turnover: ... and at most this (cost-fragile churn)
    :param bootstrap_samples: resamples of the seeds for the confidence interval of mean Sharpe
    :param confidence: two-sided level of that interval; its lower bound must be > 0
    :param bootstrap_seed: seed of the bootstrap, so a report is reproducible
    :param min_deflated_sharpe: the best seed's Deflated Sharpe Ratio (probability that its
        Sharpe beats the best of as many skill-less trials) must reach this
    :param periods_per_year: bars per year for annualising (252 for daily bars)
    """

    min_seeds: int = 10
    min_mean_sharpe: float = 0.5
    max_sharpe_std: float = 1.0
    max_drawdown: float = 0.25
    min_turnover: float = 0.5
    max_turnover: float = 50.0
    bootstrap_samples: int = 2000
    confidence: float = 0.95
    bootstrap_seed: int = 0
    min_deflated_sharpe: float = 0.9
    periods_per_year: float = 252.0


@dataclass(frozen=True)
class EvaluationConfig:
    """Walk-forward evaluation of the ridge signal on simulated executions.

    :param folds: walk-forward test blocks (each trains on everything before it, purged)
    :param train_bars: rolling training window in bars; None trains on every earlier bar
    :param label_horizon: the label is the forward return over this many bars
    :param purge: extra bars purged before each test block, beyond the label overlap
    :param embargo: bars dropped after each combinatorial-CV test block
    :param cpcv_groups: groups N of the combinatorial purged CV behind the Sharpe distribution
    :param cpcv_test_groups: groups k tested per CPCV split (``C(N-1, k-1)`` paths)
    :param ridge_alpha: L2 penalty of the ridge on cross-sectionally standardised features
    :param rebalance_bars: rebalance to the predicted weights every this many bars and hold
        in between (the label horizon by default: each decision is held for what it predicts)
    :param max_weight: per-name position cap, fraction of equity
    :param gross_leverage: sum of absolute target weights, fraction of equity
    :param market_neutral: subtract each bar's cross-sectional mean prediction (with more
        than one symbol) so longs and shorts balance
    :param initial_cash: starting capital of every simulated run, currency
    :param periods_per_year: bars per year for annualising (252 for daily bars)
    :param pbo_submatrices: CSCV blocks S for the PBO over a parameter grid (even)
    :param max_plausible_sharpe: an annualised net Sharpe above this is flagged as
        implausible (likely leakage or a data error); 3-4 is rare for real daily strategies
    :param max_cost_share: flag when costs exceed this share of a positive gross P&L
    """

    folds: int = 5
    train_bars: int | None = None
    label_horizon: int = 5
    purge: int = 0
    embargo: int = 5
    cpcv_groups: int = 6
    cpcv_test_groups: int = 2
    ridge_alpha: float = 10.0
    rebalance_bars: int = 5
    max_weight: float = 0.1
    gross_leverage: float = 1.0
    market_neutral: bool = True
    initial_cash: float = 1_000_000.0
    periods_per_year: float = 252.0
    pbo_submatrices: int = 8
    max_plausible_sharpe: float = 4.0
    max_cost_share: float = 0.5


@dataclass(frozen=True)
class AppConfig:
    """All sections; ``load_config`` builds one."""

    data: DataConfig = field(default_factory=DataConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    cost_model: CostModelConfig = field(default_factory=CostModelConfig)
    oms: OmsConfig = field(default_factory=OmsConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    manager: ManagerConfig = field(default_factory=ManagerConfig)
    alpaca: AlpacaConfig = field(default_factory=AlpacaConfig)
    artifacts: ArtifactsConfig = field(default_factory=ArtifactsConfig)
    rl_env: RLEnvConfig = field(default_factory=RLEnvConfig)
    rl_train: RLTrainConfig = field(default_factory=RLTrainConfig)
    governance: PromotionCriteria = field(default_factory=PromotionCriteria)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)


ENV_PREFIX = "AI_TRADING_"
ENV_SHORTCUTS: dict[str, tuple[str, str]] = {
    "AI_TRADING_DATA_DB": ("data", "db_path"),
    "AI_TRADING_OMS_DSN": ("oms", "dsn"),
    "APCA_API_KEY_ID": ("alpaca", "key_id"),
    "APCA_API_SECRET_KEY": ("alpaca", "secret_key"),
    "APCA_API_BASE_URL": ("alpaca", "base_url"),
}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a TOML or environment value to the field's declared type."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {**globals(), **vars(typing)})  # noqa: S307 - our own annotations
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return _coerce(value, args[0], where)
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if annotation is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(f"not an integer: {value!r}")
            return int(value)
        if annotation is float:
            return float(value)
        if annotation is Path:
            return Path(os.path.expanduser(str(value)))
        if annotation is str:
            return str(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    raise ConfigError(f"{where}: unsupported field type {annotation!r}")


def _apply(section_obj: Any, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(section_obj)}
    changes = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
        changes[key] = _coerce(value, known[key].type, f"{where}.{key}")
    return replace(section_obj, **changes)


def override(config: AppConfig, section: str, **values: Any) -> AppConfig:
    """A copy of ``config`` with the given settings of one section replaced, skipping
    ``None`` values (unset command-line flags)."""
    changes = {key: value for key, value in values.items() if value is not None}
    if not changes:
        return config
    return replace(config, **{section: replace(getattr(config, section), **changes)})


def _setting_spelled_with_one_underscore(name: str) -> str | None:
    """``AI_TRADING_<SECTION>__<FIELD>`` when ``name`` is that setting's variable with one
    underscore after the section (``AI_TRADING_EXECUTION_FEE_BPS``), which would otherwise
    be ignored without a word; None for any other name."""
    if not name.startswith(ENV_PREFIX):
        return None
    rest = name[len(ENV_PREFIX):].lower()
    defaults = AppConfig()
    for section in fields(defaults):
        key = rest.removeprefix(section.name + "_")
        if key != rest and key in {f.name for f in fields(getattr(defaults, section.name))}:
            return f"{ENV_PREFIX}{section.name.upper()}__{key.upper()}"
    return None


def load_config(path: Path | str | None = None, environ: Mapping[str, str] | None = None) -> AppConfig:
    """Build the configuration from defaults, an optional TOML file and the environment."""
    environ = os.environ if environ is None else environ
    path = path if path is not None else environ.get("AI_TRADING_CONFIG")
    overrides: dict[str, dict[str, Any]] = {}
    if path:
        try:
            with open(path, "rb") as handle:
                document = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        for section, values in document.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: top-level key {section!r} must be a [section] table")
            overrides.setdefault(section, {}).update(values)
    for name, value in environ.items():
        if name in ENV_SHORTCUTS:
            section, key = ENV_SHORTCUTS[name]
            overrides.setdefault(section, {})[key] = value
        elif name.startswith(ENV_PREFIX) and "__" in name:
            section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
            overrides.setdefault(section, {})[key] = value
        elif (meant := _setting_spelled_with_one_underscore(name)) is not None:
            raise ConfigError(
                f"environment variable {name} names no setting; the setting's variable is {meant} "
                "(two underscores between section and field)"
            )
    config = AppConfig()
    sections = {f.name for f in fields(config)}
    for section, values in overrides.items():
        if section not in sections:
            raise ConfigError(f"unknown config section [{section}]; known: {', '.join(sorted(sections))}")
        config = replace(config, **{section: _apply(getattr(config, section), values, section)})
    return config
