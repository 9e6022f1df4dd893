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


def default_data_dir() -> Path:
    """Per-user data directory (``~/.local/share/ai-trading`` on Linux): outputs a user keeps,
    such as training runs, when no ``--out`` is given; never the source tree or the CWD."""
    return Path(platformdirs.user_data_dir(APP_NAME))


@dataclass(frozen=True)
class DataConfig:
    """Market-data store.

    :param db_path: DuckDB file holding the ``bars`` table
    :param synthetic_seed: seed of the built-in data set generator
    :param synthetic_symbols: symbols in the built-in data set (three liquidity tiers)
    :param synthetic_daily_bars: daily bars per symbol (2520 business days, about 10 years)
    :param synthetic_minute_bars: 1-minute bars per symbol (20 sessions of 390 bars)
    :param exchange_tz: the exchange's time zone (IANA name); a daily bar is keyed by its
        session date in this zone, whatever clock time its source stamped
    :param sessions_per_year: trading sessions a year, the annualisation factor of daily
        bars (252: NYSE/Nasdaq average over 2000-2024)
    :param session_minutes: minutes in a regular session (390: 09:30-16:00 New York); with
        ``sessions_per_year`` it annualises intraday bars
    """

    db_path: Path = field(default_factory=lambda: default_cache_dir() / "market.duckdb")
    synthetic_seed: int = 7
    synthetic_symbols: int = 40
    synthetic_daily_bars: int = 2520
    synthetic_minute_bars: int = 7800
    exchange_tz: str = "America/New_York"
    sessions_per_year: float = 252.0
    session_minutes: float = 390.0


@dataclass(frozen=True)
class ExecutionConfig:
    """Execution simulator cost parameters (see DESIGN.md, execution model).

    Calibration of the defaults: on daily bars an order's cost against the arrival mid is
    ``spread / 2 + slippage_base_bps + slippage_vol_coef * sigma + impact_eta * sigma *
    participation**impact_beta`` (sigma: daily volatility in bps). Measured through the
    simulator on the built-in large-cap and small-cap names (tests/execution/
    test_calibration.py, table in the README), that curve sits inside the published
    ranges of institutional costs for each tier:

    - Frazzini, Israel and Moskowitz, "Trading Costs" (2018; AQR's live executions): large
      caps about 9 bps of market impact at typical (small) size, their model about 10 bps
      at 1% of daily volume and 20-30 bps at 5-10%;
    - Almgren, Thum, Hauptmann and Li (2005), "Direct estimation of equity market
      impact": temporary impact ``0.142 * sigma * (X / VT)**0.6`` plus half the permanent
      ``0.314 * sigma * (X / V) * (shares outstanding / V)**0.25``, trading over one day;
    - Toth et al. (2011), "Anomalous price impact and the critical nature of liquidity":
      the square-root law ``Y * sigma * sqrt(Q / V)`` with Y between 0.5 and 1.

    ``impact_eta = 0.8`` puts the cost in the upper half of Toth's range, above Almgren's
    and at or below Frazzini's. Before, ``slippage_vol_coef = 0.05`` charged 5% of a day's
    volatility on every daily fill whatever its size (4 bps for a large cap, 20 for a
    small cap), above every published small-size cost, and ``spread_vol_mult = 0.1``
    modeled a 10-20 bps spread for a large cap without quotes (SPY-like names quote under
    1 bp): about 28 bps at 0.65% participation resulted. The impact is per bar, so on
    intraday bars it is not calibrated by this comparison.

    :param seed: seed of the counter-based generator; a seeded run is bit-identical
    :param latency_median_ms: median order latency. 50 ms is a typical retail/API
        round trip to a US equity venue (broker gateway plus exchange)
    :param latency_sigma: lognormal shape of the latency (sigma of log-latency); 0 makes it
        constant
    :param spread_floor_bps: smallest modeled spread, used when the data has no spread
    :param spread_vol_mult: modeled spread grows by this many bps per bp of per-bar
        volatility (spreads widen with volatility: Roll 1984; Corwin and Schultz 2012);
        0.02 models 3-5 bps for a large cap's daily bars (100-200 bps of volatility), in
        the 1-5 bps large caps quote; small caps quote wider than any one multiple fits,
        so give their data a ``spread_bps`` column
    :param tick_size: price increment; a spread is never below one tick
    :param slippage_base_bps: fixed slippage per fill, bps of the reference price; 0.25 is
        about Almgren et al.'s temporary impact of a 0.1% order of a large cap (0.2-0.4 bps)
    :param slippage_vol_coef: slippage per bp of per-bar volatility, whatever the size;
        0 by default: the published small-size costs above hold nothing but the half
        spread (the volatility of execution prices is the zero-mean noise term)
    :param impact_eta: coefficient of the size/participation impact
        ``eta * sigma_bps * participation**beta``; 0.8, inside the square-root law's
        0.5-1 (Toth et al. 2011; Almgren et al. 2005 fit beta ~ 0.6)
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
    spread_vol_mult: float = 0.02
    tick_size: float = 0.01
    slippage_base_bps: float = 0.25
    slippage_vol_coef: float = 0.0
    impact_eta: float = 0.8
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
class EngineConfig:
    """Execution engine: target weights -> netted, rounded orders (``ai_trading.execution.engine``).

    :param lot_size: shares per lot; every order is a whole number of lots (1 = whole
        shares; 0.001 for fractional trading where the broker allows it)
    :param min_order_notional: trades smaller than this (currency) are skipped: below it
        the minimum fee per order (0.35 USD at Interactive Brokers Pro) dominates
    :param max_cost_share: no-trade band: a trade whose expected cost from the EWMA cost
        model (half spread + slippage + impact, fees excluded) exceeds this share of its
        traded notional is skipped; 0.005 = 50 bps, several times the 5-20 bps a liquid
        US equity costs to trade (Frazzini, Israel and Moskowitz 2018)
    :param order_type: ``market`` or ``limit`` (a marketable limit at the decision price
        plus or minus ``limit_collar_bps``)
    :param limit_collar_bps: distance of a marketable limit from the decision price, bps
    :param price_tick: limit prices are rounded outward to this increment (US equities
        above 1 USD: 0.01, SEC Rule 612)
    :param time_in_force: broker time-in-force code of every order (``day``, ``gtc``, ...)
    """

    lot_size: float = 1.0
    min_order_notional: float = 100.0
    max_cost_share: float = 0.005
    order_type: str = "market"
    limit_collar_bps: float = 10.0
    price_tick: float = 0.01
    time_in_force: str = "day"


@dataclass(frozen=True)
class RiskConfig:
    """Pre-trade risk limits (``ai_trading.execution.risk``), checked before an order is
    persisted or sent, in the spirit of SEC Rule 15c3-5 (market access controls).
    Conservative defaults for a 1M account; raise them deliberately.

    :param account: the account whose trading state (ACTIVE, REDUCING, HALTED) the engine
        and the order manager read from the OMS database
    :param max_order_notional: largest notional of one order, currency (fat-finger limit)
    :param max_position_notional: largest absolute position per symbol after the
        rebalance, currency (10% of a 1M account)
    :param max_gross_exposure: largest sum of absolute position notionals after the
        rebalance, as a multiple of equity (1.0 = no leverage)
    :param max_net_exposure: largest absolute sum of signed position notionals after the
        rebalance, as a multiple of equity
    :param max_price_deviation_bps: a limit price further than this from the last close is
        refused (price collar; 5%, the tier-1 limit-up/limit-down band of US equities)
    :param max_orders_per_minute: new orders allowed in any trailing 60 s, counted from the
        OMS database so restarts and other processes count too (Alpaca's API allows 200
        requests per minute per account)
    :param restricted_symbols: comma-separated symbols that may never be traded
    """

    account: str = "default"
    max_order_notional: float = 50_000.0
    max_position_notional: float = 100_000.0
    max_gross_exposure: float = 1.0
    max_net_exposure: float = 1.0
    max_price_deviation_bps: float = 500.0
    max_orders_per_minute: int = 200
    restricted_symbols: str = ""


@dataclass(frozen=True)
class AlpacaConfig:
    """Alpaca Trading API v2 (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``, ``APCA_API_BASE_URL``)
    and Market Data API v2 (``APCA_API_DATA_URL``), which share the key, secret and retries.

    :param base_url: API root; the paper endpoint unless live trading is meant
    :param data_url: Market Data API root (historical bars; the same host serves paper and
        live accounts)
    :param key_id: API key id (never logged)
    :param secret_key: API secret (never logged)
    :param timeout_s: per-request timeout (connect, read and write), seconds
    :param max_retries: extra attempts for safe requests (GET, DELETE) after a transport
        error, 429 or 5xx; an order submission (POST) is never retried
    :param retry_backoff_s: first backoff between retries, doubled on each attempt
    """

    base_url: str = "https://paper-api.alpaca.markets"
    data_url: str = "https://data.alpaca.markets"
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
    :param seeds: independent runs, seeds ``first_seed .. first_seed + seeds - 1``; 5, the
        least the promotion gate accepts, so a default run can be promoted (10 recommended)
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
    seeds: int = 5
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

    :param min_seeds: seeds required, never fewer than 5, so that the default 5-seed run can
        pass; 10 is recommended for a policy that will trade (Henderson et al. 2018 show
        two sets of 5 seeds of one algorithm can differ significantly)
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
    :param periods_per_year: bars per year for annualising; None (the default) takes it
        from the frequency of the data the seeds were evaluated on (252 for daily bars,
        252 * 390 for 1-minute bars); a number overrides it
    """

    min_seeds: int = 5
    min_mean_sharpe: float = 0.5
    max_sharpe_std: float = 1.0
    max_drawdown: float = 0.25
    min_turnover: float = 0.5
    max_turnover: float = 50.0
    bootstrap_samples: int = 2000
    confidence: float = 0.95
    bootstrap_seed: int = 0
    min_deflated_sharpe: float = 0.9
    periods_per_year: float | None = None


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
    :param periods_per_year: bars per year every annualised figure of the evaluation uses
        (Sharpe, volatility, CAGR, turnover, cost drag). None (the default) takes it from
        the panel's bar frequency: ``data.sessions_per_year`` for daily bars,
        ``sessions_per_year * session_minutes / bar minutes`` for intraday bars
        (:func:`ai_trading.data.frequency.periods_per_year`); a number overrides that for
        data whose calendar differs (e.g. 365 for crypto daily bars). The report states
        the figure used.
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
    periods_per_year: float | None = None
    pbo_submatrices: int = 8
    max_plausible_sharpe: float = 4.0
    max_cost_share: float = 0.5


@dataclass(frozen=True)
class MLPromotionCriteria:
    """When an ML model (``ai-trading ml train``) may be promoted; every statistic is read
    from its signed out-of-sample walk-forward and CPCV evaluation on the simulator.

    :param min_deflated_sharpe: Deflated Sharpe Ratio of the aggregate net returns, deflated
        for the ridge penalties tried (Bailey and Lopez de Prado 2014); 0.9 is the usual
        "90% likely to beat the best skill-less trial" bar
    :param max_pbo: Probability of Backtest Overfitting across the penalties tried (Bailey
        et al. 2017); above 0.5 the in-sample choice is worse than chance out of sample
    :param min_net_sharpe: annualised net Sharpe of the walk-forward's out-of-sample span
    :param max_drawdown: its worst net drawdown, positive fraction of peak equity
    :param min_turnover: annualised two-sided turnover at least this (a model that never
        trades has nothing to deploy)
    :param max_turnover: ... and at most this (cost-fragile churn)
    :param min_cpcv_sharpe_mean: mean net Sharpe over the combinatorial purged CV paths
    :param pbo_alphas: comma-separated ridge penalties ``ml train`` evaluates for the PBO
        and the deflation (three decades around ``[evaluation] ridge_alpha``)
    """

    min_deflated_sharpe: float = 0.9
    max_pbo: float = 0.5
    min_net_sharpe: float = 0.5
    max_drawdown: float = 0.25
    min_turnover: float = 0.5
    max_turnover: float = 50.0
    min_cpcv_sharpe_mean: float = 0.0
    pbo_alphas: str = "1,10,100"


@dataclass(frozen=True)
class AlertsConfig:
    """Alert rules, routing and delivery (``ai_trading.monitoring``).

    Rule thresholds: a rule fires when its condition has held for its ``*_for_s`` (0: at
    the first evaluation that sees it). Routing timings are Alertmanager's defaults
    (prometheus.io/docs/alerting/latest/configuration, ``route``), used where the routes
    file does not set them.

    :param routes_file: TOML file of the routing tree, receivers and inhibition rules
        (format in the README, example in ``examples/alerts.toml``); None: alerts are
        recorded in the outbox under the receiver ``unrouted`` and logged, never sent
    :param external_url: this system's URL, sent as ``externalURL`` in every payload
    :param group_wait_s: wait before a new group's first notification (30 s)
    :param group_interval_s: wait before notifying a group's changes (5 min)
    :param repeat_interval_s: wait before repeating an unchanged notification (4 h)
    :param reconcile_for_s: a failed OMS reconciliation fires after this long
    :param cost_spike_ratio: realized cost over the cost model's prediction that fires
        (3x: an execution several times dearer than modeled is no noise at 1-5 bps spreads)
    :param cost_spike_min_excess_bps: ... and only when realized exceeds predicted by at
        least this many bps, so a 0.5 bps prediction met at 2 bps does not page anyone
    :param cost_spike_for_s: a cost spike fires after this long
    :param data_staleness_grace_s: how late a bar may be after the calendar expects it
        before data counts as stale (2 min: a broker's bar arrives within seconds of the close)
    :param data_staleness_for_s: stale data fires after this long
    :param step_budget_s: a trading-loop step slower than this breaches its budget
    :param step_over_budget_for_s: slow steps fire after this long
    :param max_reject_rate: share of orders the broker rejects above which trading is suspect
    :param reject_rate_min_orders: the reject rate is judged only over at least this many orders
    :param reject_rate_for_s: a high reject rate fires after this long
    :param run_budget_s: a backtest or evaluation run slower than this breaches its budget
    :param broker_unreachable_for_s: an unreachable broker fires after this long (30 s:
        a few failed polls, not one dropped request)
    :param evaluation_for_s: evaluation anomaly flags fire after this long
    :param governance_for_s: a governance failure fires after this long
    :param receiver_timeout_s: connect/read timeout of each webhook request and SMTP session
    :param delivery_max_attempts: attempts per notification before it is marked failed
    :param delivery_backoff_base_s: first retry delay; doubled per attempt, with full
        jitter (a uniform draw below it: AWS Architecture Blog, "Exponential Backoff And
        Jitter", 2015)
    :param delivery_backoff_max_s: cap of the retry delay
    :param delivery_lease_s: how long a worker owns a claimed notification; a worker
        killed mid-delivery leaves it to another worker once this has passed
    :param delivery_batch: notifications one worker pass claims at most
    :param kill_switch_halt_on: comma-separated alert names that set the account HALTED
        when they reach a kill-switch receiver (a broken OMS/broker agreement or a broker
        refusing orders is no state to keep trading in; a model that cannot be rolled back
        must not trade on)
    :param kill_switch_reduce_on: comma-separated alert names that set it REDUCING (only
        exposure-reducing orders): stale data or an unreachable broker make new exposure
        unsafe, closing it is still wanted
    :param rollback_on: comma-separated triggers of an automatic model rollback:
        ``governance`` (the current model fails its gate), ``sharpe``, ``drawdown`` (live
        SLOs over the trailing window)
    :param rollback_window_bars: trailing window of live returns the SLOs are judged over,
        in bars (63: a quarter of daily bars); nothing is judged before it is full
    :param rollback_sharpe_z: roll back when the trailing annualised Sharpe ratio is more
        than this many standard errors below the model's signed out-of-sample Sharpe (the
        standard error of an estimated Sharpe ratio, Lo 2002: sqrt((1 + SR^2 / 2) / n) per
        period; 3: a one-in-a-thousand shortfall for a model that still works)
    :param rollback_drawdown_multiple: roll back when the trailing window's maximum drawdown
        exceeds this multiple of the model's signed out-of-sample maximum drawdown
    :param loop_auto_rollback: the trading loop feeds its trailing returns to the automatic
        rollback (off by default: a replay of history must not roll the registry back
        unless asked; turn it on for paper and live trading)
    :param risk_denials_per_bar: a bar whose rebalance the risk checks denied more orders
        than this raises ``RiskDenialsHigh`` (10: a limit that binds on a whole rebalance
        says the sizing and the limits disagree, not that one order was too large)
    :param risk_denials_for_s: too many risk denials fire after this long
    :param reject_rate_window_orders: the reject rate is the share of the last this many
        orders sent that the broker rejected
    :param loop_shutdown_delivery_s: how long a stopping trading loop waits for its last
        notifications to be delivered (what is not delivered by then stays in the outbox
        for ``ai-trading alerts deliver``)
    """

    routes_file: Path | None = None
    external_url: str = ""
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 14400.0
    reconcile_for_s: float = 0.0
    cost_spike_ratio: float = 3.0
    cost_spike_min_excess_bps: float = 10.0
    cost_spike_for_s: float = 0.0
    data_staleness_grace_s: float = 120.0
    data_staleness_for_s: float = 0.0
    step_budget_s: float = 5.0
    step_over_budget_for_s: float = 0.0
    max_reject_rate: float = 0.05
    reject_rate_min_orders: int = 20
    reject_rate_for_s: float = 300.0
    run_budget_s: float = 3600.0
    broker_unreachable_for_s: float = 30.0
    evaluation_for_s: float = 0.0
    governance_for_s: float = 0.0
    receiver_timeout_s: float = 10.0
    delivery_max_attempts: int = 12
    delivery_backoff_base_s: float = 1.0
    delivery_backoff_max_s: float = 600.0
    delivery_lease_s: float = 60.0
    delivery_batch: int = 50
    kill_switch_halt_on: str = "OmsReconciliationMismatch,OrderRejectRateHigh,ModelRollbackBlocked"
    kill_switch_reduce_on: str = "MarketDataStale,BrokerUnreachable"
    rollback_on: str = "governance,sharpe,drawdown"
    rollback_window_bars: int = 63
    rollback_sharpe_z: float = 3.0
    rollback_drawdown_multiple: float = 2.0
    loop_auto_rollback: bool = False
    risk_denials_per_bar: int = 10
    risk_denials_for_s: float = 0.0
    reject_rate_window_orders: int = 100
    loop_shutdown_delivery_s: float = 30.0


@dataclass(frozen=True)
class RuntimeConfig:
    """The trading loop (``ai_trading.runtime``): replay now, paper and live on the same loop.

    :param initial_cash: the replay account's cash at the start (currency); 100,000 keeps
        the demo's positions (a fifth of the symbols long, a fifth short) inside the
        default ``[risk]`` limits (50,000 per order, 100,000 per position)
    :param runs_dir: where a replay without ``--out`` keeps its run (OMS database, broker
        state, cost model, execution log); default ``<user data dir>/replays``
    :param horizon: the CIDv2 horizon of the loop's decisions (one rebalance per bar)
    :param progress_interval_s: seconds between progress lines on a terminal's stderr
    :param history_bars: bars a paper or live run fetches before its first decision when
        the store lacks them (300: a year of daily bars covers the demo's and most
        models' lookbacks; the ``history`` gate says when a model needs more)
    :param feed_poll_interval_s: after a bar's close, how often a paper or live run asks
        the market-data API for it while it is missing (5 s: Alpaca publishes a bar within
        seconds of its close; its rate limit is 200 requests a minute)
    :param partial_bar_wait_s: after a close, how long to wait for symbols whose bar is
        still missing before trading on those that have it (the others hold): an illiquid
        symbol may have no trade, hence no bar, in a minute
    :param max_clock_skew_s: the largest difference between this machine's clock and
        Alpaca's ``/v2/clock`` a paper or live run starts with (bar closes are waited for
        by the local clock)
    """

    initial_cash: float = 100_000.0
    runs_dir: Path = field(default_factory=lambda: default_data_dir() / "replays")
    horizon: str = "1bar"
    progress_interval_s: float = 2.0
    history_bars: int = 300
    feed_poll_interval_s: float = 5.0
    partial_bar_wait_s: float = 10.0
    max_clock_skew_s: float = 5.0


@dataclass(frozen=True)
class AppConfig:
    """All sections; ``load_config`` builds one."""

    data: DataConfig = field(default_factory=DataConfig)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    cost_model: CostModelConfig = field(default_factory=CostModelConfig)
    oms: OmsConfig = field(default_factory=OmsConfig)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    manager: ManagerConfig = field(default_factory=ManagerConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)
    alpaca: AlpacaConfig = field(default_factory=AlpacaConfig)
    artifacts: ArtifactsConfig = field(default_factory=ArtifactsConfig)
    rl_env: RLEnvConfig = field(default_factory=RLEnvConfig)
    rl_train: RLTrainConfig = field(default_factory=RLTrainConfig)
    governance: PromotionCriteria = field(default_factory=PromotionCriteria)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    ml_governance: MLPromotionCriteria = field(default_factory=MLPromotionCriteria)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


ENV_PREFIX = "AI_TRADING_"
ENV_SHORTCUTS: dict[str, tuple[str, str]] = {
    "AI_TRADING_DATA_DB": ("data", "db_path"),
    "AI_TRADING_OMS_DSN": ("oms", "dsn"),
    "APCA_API_KEY_ID": ("alpaca", "key_id"),
    "APCA_API_SECRET_KEY": ("alpaca", "secret_key"),
    "APCA_API_BASE_URL": ("alpaca", "base_url"),
    "APCA_API_DATA_URL": ("alpaca", "data_url"),
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
