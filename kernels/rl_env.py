"""Batched portfolio RL environment: N environments stepped in one call over one panel.

Every environment is a portfolio on the same market data. A step takes the agent's
action at decision bar ``t`` (fractions in [-1, 1] of the gross leverage limit per
asset), rebalances through :func:`kernels.portfolio.portfolio_step` (fills in bar
``t + 1`` with spread, slippage, latency and participation-capped partial fills, the
unfilled remainder left as a position gap), and rewards the net-of-cost log-equity change:

    reward = log(E[t+1] / E[t])
             - drawdown_penalty * drawdown[t+1]
             - turnover_penalty * max(0, traded[t+1] / E[t] - turnover_budget)
             - leverage_penalty * max(0, gross[t+1] / E[t+1] - leverage_limit)

with ``drawdown = 1 - E / peak(E)`` over the episode. An episode starts flat at a start
bar drawn from the counter-based generator keyed by (env seed, episode number), so one
environment's trajectory is the same whether it is stepped alone or in a batch. It ends
(terminated) when the drawdown reaches ``max_drawdown`` or equity is gone, and is
truncated after ``episode_length`` steps or at the end of the data range.

The observation at bar ``t`` is the feature row at ``t`` (NaN -> 0) followed by the
portfolio state at ``t``'s close (layout ``O_*`` after the ``S`` position weights).
An account wiped out (equity <= 0) observes zeros.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from kernels.layout import N_COST_STATE
from kernels.portfolio import (
    B_EQUITY,
    B_GROSS_EXPOSURE,
    B_TRADED,
    N_ARRIVAL,
    N_BAR_STATS,
    N_DRAW,
    mark_to_market,
    portfolio_step,
    position_value,
)
from kernels.rng import uniform

# Environment parameters (float64[N_ENV_PARAMS]).
E_EPISODE_LENGTH = 0  # steps before truncation
E_LEVERAGE_LIMIT = 1  # gross leverage limit: |weights| sum to at most this
E_INITIAL_CASH = 2  # currency at the start of each episode
E_MAX_DRAWDOWN = 3  # drawdown (fraction of peak equity) that terminates the episode
E_DRAWDOWN_PENALTY = 4  # reward penalty per unit of drawdown
E_TURNOVER_BUDGET = 5  # traded notional / equity per step allowed without penalty
E_TURNOVER_PENALTY = 6  # penalty per unit of turnover beyond the budget
E_LEVERAGE_PENALTY = 7  # penalty per unit of gross leverage beyond the limit
E_FIRST_START = 8  # first bar an episode may start at (features warmed up)
E_LAST_BAR = 9  # last bar of the range; episodes never step past it
N_ENV_PARAMS = 10

# Portfolio part of the observation, after the S*F features and the S position weights.
O_CASH = 0  # cash / equity
O_GROSS = 1  # sum |position value| / equity (gross exposure)
O_NET = 2  # sum position value / equity (net exposure)
O_LEVERAGE_USE = 3  # gross exposure / leverage limit
O_DRAWDOWN = 4  # 1 - equity / episode peak
N_PORTFOLIO_OBS = 5

STREAM_EPISODE_START = 1  # rng stream of start-bar draws (0 is the simulator's)
EQUITY_FLOOR = 1e-9  # equity ratio floor inside the log when a step wipes the account out


@njit(cache=True, nogil=True)
def write_observation(
    i: int, features: np.ndarray, positions: np.ndarray, cash: np.ndarray, marks: np.ndarray,
    equity: np.ndarray, peak: np.ndarray, bar: np.ndarray, env_params: np.ndarray, out: np.ndarray,
) -> None:  # fmt: skip
    """Write env ``i``'s observation at its bar into ``out`` (float32[D])."""
    t = bar[i]
    n_feat = features.shape[1]
    n_symbols = positions.shape[1]
    for k in range(n_feat):
        v = features[t, k]
        out[k] = v if v == v else 0.0
    e = equity[i]
    gross = 0.0
    net = 0.0
    for s in range(n_symbols):
        value = position_value(positions[i, s], marks[i, s])
        out[n_feat + s] = value / e
        gross += abs(value)
        net += value
    base = n_feat + n_symbols
    out[base + O_CASH] = cash[i, 0] / e
    out[base + O_GROSS] = gross / e
    out[base + O_NET] = net / e
    out[base + O_LEVERAGE_USE] = gross / e / env_params[E_LEVERAGE_LIMIT]
    out[base + O_DRAWDOWN] = 1.0 - e / peak[i]


@njit(cache=True, nogil=True)
def reset_env(
    i: int, close: np.ndarray, valid: np.ndarray, positions: np.ndarray, cash: np.ndarray, marks: np.ndarray,
    equity: np.ndarray, peak: np.ndarray, bar: np.ndarray, steps: np.ndarray, episode: np.ndarray,
    seeds: np.ndarray, env_params: np.ndarray,
) -> None:  # fmt: skip
    """Start env ``i``'s episode number ``episode[i]`` flat, at a start bar drawn uniformly
    from ``[first_start, last_bar - episode_length]`` (at least ``first_start``)."""
    first = int(env_params[E_FIRST_START])
    last_start = max(first, int(env_params[E_LAST_BAR]) - int(env_params[E_EPISODE_LENGTH]))
    u = uniform(seeds[i], episode[i], 0, STREAM_EPISODE_START)
    start = first + min(int(u * (last_start - first + 1)), last_start - first)
    positions[i, :] = 0.0
    marks[i, :] = np.nan
    mark_to_market(start, close, valid, positions[i], marks[i])
    cash[i, 0] = env_params[E_INITIAL_CASH]
    equity[i] = cash[i, 0]
    peak[i] = cash[i, 0]
    bar[i] = start
    steps[i] = 0


@njit(cache=True, nogil=True)
def reset_envs(
    which: np.ndarray, features: np.ndarray, close: np.ndarray, valid: np.ndarray, positions: np.ndarray,
    cash: np.ndarray, marks: np.ndarray, equity: np.ndarray, peak: np.ndarray, bar: np.ndarray,
    steps: np.ndarray, episode: np.ndarray, seeds: np.ndarray, env_params: np.ndarray, obs: np.ndarray,
) -> None:  # fmt: skip
    """Reset the envs whose ``which`` flag is set and write their observations."""
    for i in range(which.shape[0]):
        if which[i]:
            reset_env(i, close, valid, positions, cash, marks, equity, peak, bar, steps, episode, seeds, env_params)
            write_observation(i, features, positions, cash, marks, equity, peak, bar, env_params, obs[i])


@njit(cache=True, nogil=True)
def clip_targets(action: np.ndarray, leverage_limit: float, targets: np.ndarray) -> None:
    """Weights = clip(action, -1, 1) * limit, scaled down so their gross sum is at most the limit."""
    gross = 0.0
    for s in range(action.shape[0]):
        a = min(max(float(action[s]), -1.0), 1.0) if action[s] == action[s] else 0.0
        targets[s] = a * leverage_limit
        gross += abs(targets[s])
    if gross > leverage_limit:
        scale = leverage_limit / gross
        for s in range(action.shape[0]):
            targets[s] *= scale


@njit(cache=True, nogil=True)
def step_envs(
    actions: np.ndarray, features: np.ndarray, open_: np.ndarray, close: np.ndarray, volume: np.ndarray,
    valid: np.ndarray, data_spread_bps: np.ndarray, sigma_bps: np.ndarray, coefs: np.ndarray,
    params: np.ndarray, env_params: np.ndarray, positions: np.ndarray, cash: np.ndarray, marks: np.ndarray,
    equity: np.ndarray, peak: np.ndarray, bar: np.ndarray, steps: np.ndarray, episode: np.ndarray,
    seeds: np.ndarray, autoreset: bool, obs: np.ndarray, rewards: np.ndarray, terminated: np.ndarray,
    truncated: np.ndarray, terminal_obs: np.ndarray,
) -> None:  # fmt: skip
    """Step every env once with ``actions[N, S]``; write observations, rewards and flags.

    With ``autoreset``, an env whose episode ended writes its final observation into
    ``terminal_obs[i]``, starts its next episode, and ``obs[i]`` is the new first
    observation (SB3's VecEnv convention); otherwise ``obs[i]`` is the final observation.
    Execution randomness is keyed by the env's seed, so it does not depend on N.
    """
    n_envs, n_symbols = positions.shape
    targets = np.empty(n_symbols)
    fill_qty = np.empty(n_symbols)
    fill_price = np.empty(n_symbols)
    stats = np.empty(N_BAR_STATS)
    order_keys = np.empty(n_symbols, dtype=np.uint64)
    arrival = np.empty((N_ARRIVAL, 1, n_symbols))
    draws = np.empty((N_DRAW, 1, n_symbols), dtype=np.float32)
    no_cost_state = np.empty((N_COST_STATE, 0))  # envs do not learn costs
    limit = env_params[E_LEVERAGE_LIMIT]
    for i in range(n_envs):
        clip_targets(actions[i], limit, targets)
        before = equity[i]
        t = bar[i]
        cash[i, 0] = portfolio_step(
            t, targets, before, cash[i, 0], open_, close, volume, valid, data_spread_bps, sigma_bps,
            coefs, params, seeds[i], False, no_cost_state, 1.0, order_keys, arrival, draws,
            positions[i], marks[i], fill_qty, fill_price, stats,
        )  # fmt: skip
        after = stats[B_EQUITY]
        equity[i] = after
        peak[i] = max(peak[i], after)
        bar[i] = t + 1
        steps[i] += 1
        drawdown = 1.0 - after / peak[i]
        growth = max(after / before, EQUITY_FLOOR)
        reward = math.log(growth) - env_params[E_DRAWDOWN_PENALTY] * drawdown
        reward -= env_params[E_TURNOVER_PENALTY] * max(0.0, stats[B_TRADED] / before - env_params[E_TURNOVER_BUDGET])
        if after > 0.0:
            reward -= env_params[E_LEVERAGE_PENALTY] * max(0.0, stats[B_GROSS_EXPOSURE] / after - limit)
        rewards[i] = reward
        ended = after <= 0.0 or drawdown >= env_params[E_MAX_DRAWDOWN]
        terminated[i] = ended
        truncated[i] = (not ended) and (steps[i] >= env_params[E_EPISODE_LENGTH] or t + 1 >= env_params[E_LAST_BAR])
        if ended or truncated[i]:
            if autoreset:
                if after > 0.0:
                    write_observation(i, features, positions, cash, marks, equity, peak, bar, env_params, terminal_obs[i])
                else:
                    terminal_obs[i, :] = 0.0
                episode[i] += 1
                reset_env(i, close, valid, positions, cash, marks, equity, peak, bar, steps, episode, seeds, env_params)
                write_observation(i, features, positions, cash, marks, equity, peak, bar, env_params, obs[i])
                continue
        if after > 0.0:
            write_observation(i, features, positions, cash, marks, equity, peak, bar, env_params, obs[i])
        else:
            obs[i, :] = 0.0
