"""Target-weight portfolio simulation: targets -> orders -> fills -> costs in one kernel.

At the close of each decision bar ``t`` the portfolio's target weights become one order
per symbol for the gap between the target and the current position; the order arrives
in bar ``t + 1`` after its latency and fills there under the participation cap, priced
by the same formulas as :mod:`kernels.fills` (time in force one bar: an unfilled
remainder stays a position gap for the next decision to close). Each fill can also
update the per-symbol EWMA cost model as it happens. This is the engine evaluation and
the RL environment step on.

Per bar the work splits in two: what an order's execution does not owe to its size
(latency, arrival mid, volume cap, spread, size-free slippage, noise) is computed for a
block of bars ahead in long vector loops; sizing against the portfolio, the fill and the
marks then run bar by bar in one short branch-free loop over symbols.

Latency here must be shorter than a bar (checked by the wrapper); a draw beyond the bar
is capped at the bar's close.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from kernels.cost_model import ewma_observe_slippage, ewma_observe_spread, moment_rows, slippage_y
from kernels.costs import fill_fee, impact_scale_bps, learned_spread, participation_power, size_free_slippage_bps, spread_bps
from kernels.fills import QTY_EPS, interpolated_mid, latency_bars, price_at_cost
from kernels.layout import C_IMPACT_ETA, P_FEE_MIN, P_IMPACT_BETA, P_MAX_PARTICIPATION, P_NOISE_BPS
from kernels.rng import STREAM_EXECUTION, box_muller_pair, box_muller_radius, box_muller_uniforms, order_key
from kernels.vector_loop import VECTOR_LOOP, choose

# Per-bar outputs of simulate_portfolio (float64[N_BAR_STATS, T]) and portfolio_step ([N_BAR_STATS]).
B_EQUITY = 0  # equity marked at the bar's close, after its fills
B_COST = 1  # execution cost vs reference mid plus fees, currency, positive = paid
B_FEES = 2  # fees, currency
B_TRADED = 3  # traded notional, currency
B_GROSS_EXPOSURE = 4  # sum |position value| at the close
B_NET_EXPOSURE = 5  # sum position value at the close
N_BAR_STATS = 6


# Arrival conditions of the order each symbol would send at a decision bar: everything
# about its execution that does not depend on its size (float64[N_ARRIVAL, bars, S]).
A_REFERENCE = 0  # mid at arrival, interpolated into the next bar
A_CAP = 1  # most shares it can fill: the participation cap of the volume left after arrival; 0 if untradable
A_FIXED_BPS = 2  # half spread + size-free slippage + noise, bps of the reference
A_INV_VOLUME = 3  # 1 / bar volume: participation = qty * this
N_ARRIVAL = 4
ARRIVAL_BLOCK_ITEMS = 8192  # bar-symbols of arrival conditions computed ahead (256 KiB, in L2)
# The float32 scratch the draws pass through on their way into the arrival conditions
# (float32[N_DRAW, bars, S]): the stages of kernels.rng.normal_pair_at, one per loop.
D_LATENCY_Z = 0  # the radius uniform, then the radius, then the latency normal
D_NOISE_Z = 1  # the angle's fraction of a quarter turn, then the noise normal
N_DRAW = 2

SQUARE_ROOT_LAW = 0.5  # the usual impact exponent; loops get a copy specialised to it


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def first_invalid_target_row(targets: np.ndarray) -> int:
    """Index of the first row of ``targets[T, S]`` (C-contiguous) that is neither all
    finite nor all NaN (a hold), or -1.

    One vector pass over all the weights settles the usual case, every weight finite
    (``w - w`` is 0 for those, NaN for NaN and infinities); rows are examined one by one
    only when it fails."""
    weights = targets.reshape(-1)
    unfinite = 0.0
    for k in range(weights.shape[0]):
        unfinite += weights[k] - weights[k]
    if unfinite == 0.0:
        return -1
    n_symbols = targets.shape[1]
    for t in range(targets.shape[0]):
        finite = 0
        missing = 0
        for s in range(n_symbols):
            w = targets[t, s]
            finite += np.isfinite(w)
            missing += w != w
        if finite != n_symbols and missing != n_symbols:
            return t
    return -1


@njit(cache=True, nogil=True, inline="always")
def position_value(position: float, mark: float) -> float:
    """Value of a position at its mark; a flat position is worth 0 even while its symbol
    has no price yet (NaN mark)."""
    return position * mark if position != 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def has_quoted_spreads(data_spread_bps: np.ndarray, close: np.ndarray) -> bool:
    """Whether ``data_spread_bps`` has a row per bar; else it is one row of NaN, the data
    has no spreads, and the loops get copies that never read it: most bar data carries
    no quotes, and those copies made a learning run about 5% faster."""
    return data_spread_bps.shape[0] == close.shape[0]


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def mark_to_market(t: int, close: np.ndarray, valid: np.ndarray, positions: np.ndarray, marks: np.ndarray) -> tuple[float, float]:
    """Move each symbol's mark to bar ``t``'s close where valid; return the net and the
    gross (sum of absolute) value of the positions at those marks."""
    value = 0.0
    gross = 0.0
    for s in range(positions.shape[0]):
        mark = choose(valid[t, s], close[t, s], marks[s])
        marks[s] = mark
        worth = position_value(positions[s], mark)
        value += worth
        gross += abs(worth)
    return value, gross


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def symbol_order_keys(seed: np.uint64, order_keys: np.ndarray) -> None:
    """The execution-draw key of each symbol's orders (order id = symbol index), once per
    run rather than once per bar-symbol."""
    for s in range(order_keys.shape[0]):
        order_keys[s] = order_key(seed, s, STREAM_EXECUTION)


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def arrival_conditions(
    first: int,
    n_decisions: int,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    order_keys: np.ndarray,
    out_reference: np.ndarray,
    out_cap: np.ndarray,
    out_fixed_bps: np.ndarray,
    out_inv_volume: np.ndarray,
    latency_z: np.ndarray,
    noise_z: np.ndarray,
) -> None:
    """Arrival conditions (``A_*``) of the decisions at bars ``first + j``, ``j`` in
    ``range(n_decisions)``, into row ``j`` of the ``out_*`` planes (``[bars, S]``). They
    depend on the data and the random draws only, so they are computed a block of bars
    ahead, apart from the state-dependent sizing in :func:`rebalance`.

    An order decided at ``t`` arrives in ``a = t + 1`` after its latency (capped at the
    bar), at the mid interpolated between the bar's open and close, and may take
    ``max_participation`` of the volume left after that. ``data_spread_bps`` is
    ``[T, S]``, or one row of NaN when the data has no spreads. ``latency_z``
    and ``noise_z`` are the float32 scratch planes (``D_*``) the draws pass through.

    Only what the sizing loop cannot compute from the inputs it reads anyway is stored:
    each plane is one more store here and one more load there. Leaving the impact scale
    and the cost model's ``y`` to that loop (it reads ``sigma_bps`` for them) made the
    whole simulation about 5% faster; the volume's reciprocal measured the same either
    way."""
    n_symbols = close.shape[1]
    spreads = has_quoted_spreads(data_spread_bps, close)
    for j in range(n_decisions):
        t = first + j
        a = t + 1
        # The draws first, in float32 scratch planes (``D_*``): in loops of their own,
        # consecutive symbols' long chains (hash, log, sqrt, sincos) overlap in the core,
        # one stage of normal_pair_at per loop.
        for s in range(n_symbols):
            latency_z[j, s], noise_z[j, s] = box_muller_uniforms(order_keys[s], a)
        for s in range(n_symbols):
            latency_z[j, s] = box_muller_radius(latency_z[j, s])
        for s in range(n_symbols):
            latency_z[j, s], noise_z[j, s] = box_muller_pair(latency_z[j, s], noise_z[j, s])
        if spreads:
            condition_symbols(
                j, t, open_, close, volume, valid, data_spread_bps, sigma_bps, coefs, params,
                out_reference, out_cap, out_fixed_bps, out_inv_volume, latency_z, noise_z, True,
            )  # fmt: skip
        else:
            condition_symbols(
                j, t, open_, close, volume, valid, data_spread_bps, sigma_bps, coefs, params,
                out_reference, out_cap, out_fixed_bps, out_inv_volume, latency_z, noise_z, False,
            )  # fmt: skip


@njit(cache=True, nogil=True, inline="always", **VECTOR_LOOP)
def condition_symbols(
    j: int,
    t: int,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    out_reference: np.ndarray,
    out_cap: np.ndarray,
    out_fixed_bps: np.ndarray,
    out_inv_volume: np.ndarray,
    latency_z: np.ndarray,
    noise_z: np.ndarray,
    spreads: bool,
) -> None:
    """The loop over symbols of :func:`arrival_conditions` for decision bar ``t`` (row
    ``j``), inlined with ``spreads`` (:func:`has_quoted_spreads`) constant."""
    a = t + 1
    max_participation = params[P_MAX_PARTICIPATION]
    noise_bps = params[P_NOISE_BPS]
    for s in range(close.shape[1]):
        frac = min(latency_bars(latency_z[j, s], params), 1.0)
        reference = interpolated_mid(open_[a, s], close[a, s], frac)
        sigma = sigma_bps[t, s]
        quoted = data_spread_bps[a, s] if spreads else np.nan
        half = 0.5 * spread_bps(reference, sigma, quoted, learned_spread(coefs, s), params)
        fixed_bps = half + size_free_slippage_bps(sigma, coefs, s) + noise_bps * noise_z[j, s]
        tradable = valid[t, s] & valid[a, s]  # both read: no branch to keep the loop scalar
        bar_volume = volume[a, s]
        out_reference[j, s] = reference
        out_cap[j, s] = choose(tradable, max_participation * bar_volume * (1.0 - frac), 0.0)
        out_fixed_bps[j, s] = fixed_bps
        out_inv_volume[j, s] = 1.0 / bar_volume


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def fill_arrival_block(
    first: int,
    n_decisions: int,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    order_keys: np.ndarray,
    arrival: np.ndarray,
    draws: np.ndarray,
) -> None:
    """:func:`arrival_conditions` into the scratch ``arrival[N_ARRIVAL, bars, S]``, with
    the draws' scratch ``draws[N_DRAW, bars, S]`` (float32), each passed as one array per
    plane: stores to several planes of one array, a run-time row length apart, are
    dependences LLVM cannot rule out, and it leaves such a loop scalar."""
    arrival_conditions(
        first, n_decisions, open_, close, volume, valid, data_spread_bps, sigma_bps, coefs, params, order_keys,
        arrival[A_REFERENCE], arrival[A_CAP], arrival[A_FIXED_BPS], arrival[A_INV_VOLUME],
        draws[D_LATENCY_Z], draws[D_NOISE_Z],
    )  # fmt: skip


@njit(cache=True, nogil=True, inline="always", **VECTOR_LOOP)
def rebalance(
    t: int,
    targets: np.ndarray,
    equity: float,
    cash: float,
    arrival: np.ndarray,
    j: int,
    close: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    positions: np.ndarray,
    marks: np.ndarray,
    fill_qty: np.ndarray,
    fill_price: np.ndarray,
    bar_stats: np.ndarray,
    learn: bool,
    decay: float,
    moments: tuple[np.ndarray, ...],
) -> float:
    """Rebalance at decision bar ``t`` from ``equity`` to ``targets`` (weights of equity,
    signed; NaN holds) and execute in bar ``a = t + 1`` under ``arrival[:, j]`` (the bar's
    conditions, :func:`arrival_conditions`) and the volatility ``sigma_bps[t]``. Updates
    ``positions`` and moves ``marks`` (the closes at ``t``) to ``a``'s closes, writes
    signed filled shares and prices per symbol (0 / NaN where nothing filled) and ``a``'s
    statistics; returns the cash after the fills. With ``learn``, each fill is folded into
    the EWMA cost state (``moments``: its rows, :func:`moment_rows`) as
    :class:`CostModel.update` folds live fills.

    The loop is compiled in six copies, for the square-root law or another exponent, and
    for learning from data with quoted spreads, learning from data without, or not
    learning, so that each keeps only the work it needs."""
    beta = params[P_IMPACT_BETA]
    root = beta == SQUARE_ROOT_LAW
    spreads = learn and has_quoted_spreads(data_spread_bps, close)
    if root and spreads:
        sums = rebalance_symbols(
            t, targets, equity, arrival, j, close, valid, data_spread_bps, sigma_bps, coefs, params,
            positions, marks, fill_qty, fill_price, SQUARE_ROOT_LAW, True, True, decay, moments,
        )  # fmt: skip
    elif root and learn:
        sums = rebalance_symbols(
            t, targets, equity, arrival, j, close, valid, data_spread_bps, sigma_bps, coefs, params,
            positions, marks, fill_qty, fill_price, SQUARE_ROOT_LAW, True, False, decay, moments,
        )  # fmt: skip
    elif root:
        sums = rebalance_symbols(
            t, targets, equity, arrival, j, close, valid, data_spread_bps, sigma_bps, coefs, params,
            positions, marks, fill_qty, fill_price, SQUARE_ROOT_LAW, False, False, decay, moments,
        )  # fmt: skip
    elif spreads:
        sums = rebalance_symbols(
            t, targets, equity, arrival, j, close, valid, data_spread_bps, sigma_bps, coefs, params,
            positions, marks, fill_qty, fill_price, beta, True, True, decay, moments,
        )  # fmt: skip
    elif learn:
        sums = rebalance_symbols(
            t, targets, equity, arrival, j, close, valid, data_spread_bps, sigma_bps, coefs, params,
            positions, marks, fill_qty, fill_price, beta, True, False, decay, moments,
        )  # fmt: skip
    else:
        sums = rebalance_symbols(
            t, targets, equity, arrival, j, close, valid, data_spread_bps, sigma_bps, coefs, params,
            positions, marks, fill_qty, fill_price, beta, False, False, decay, moments,
        )  # fmt: skip
    spent, cost, fees, traded, value, gross = sums
    cash -= spent
    bar_stats[B_EQUITY] = cash + value
    bar_stats[B_COST] = cost
    bar_stats[B_FEES] = fees
    bar_stats[B_TRADED] = traded
    bar_stats[B_GROSS_EXPOSURE] = gross
    bar_stats[B_NET_EXPOSURE] = value
    return cash


@njit(cache=True, nogil=True, inline="always", **VECTOR_LOOP)
def rebalance_symbols(
    t: int,
    targets: np.ndarray,
    equity: float,
    arrival: np.ndarray,
    j: int,
    close: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    positions: np.ndarray,
    marks: np.ndarray,
    fill_qty: np.ndarray,
    fill_price: np.ndarray,
    beta: float,
    learn: bool,
    spreads: bool,
    decay: float,
    moments: tuple[np.ndarray, ...],
) -> tuple[float, float, float, float, float, float]:
    """The loop of :func:`rebalance`, inlined with ``beta``, ``learn`` and ``spreads``
    (:func:`has_quoted_spreads`) constants; returns the bar's cash spent, cost, fees,
    traded notional, net and gross position value.

    Every symbol is priced whether or not it trades and a mask decides what is kept: the
    loop has no branches, so it runs in vector lanes."""
    a = t + 1
    fee_min = params[P_FEE_MIN]
    spent = 0.0
    cost = 0.0
    fees = 0.0
    traded = 0.0
    value = 0.0
    gross = 0.0
    for s in range(positions.shape[0]):
        mark = marks[s]
        gap = targets[s] * equity / mark - positions[s]  # NaN for a hold or an unpriced symbol
        side = 1.0 if gap > 0.0 else -1.0
        cap = arrival[A_CAP, j, s]
        qty = cap if abs(gap) > cap else abs(gap)
        trade = qty > QTY_EPS  # False for NaN
        reference = arrival[A_REFERENCE, j, s]
        sigma = sigma_bps[t, s]
        fixed_bps = arrival[A_FIXED_BPS, j, s]
        power = participation_power(qty * arrival[A_INV_VOLUME, j, s], beta)
        price = price_at_cost(side, reference, fixed_bps + impact_scale_bps(sigma, coefs, s) * power)
        # Untraded symbols may have NaN quantities and prices: select zeros before summing.
        fee = choose(trade, max(fill_fee(price, qty, params), fee_min), 0.0)
        signed_qty = choose(trade, side * qty, 0.0)
        notional = choose(trade, qty * price, 0.0)
        slippage = choose(trade, price - reference, 0.0)
        position = positions[s] + signed_qty
        positions[s] = position
        fill_qty[s] = signed_qty
        fill_price[s] = choose(trade, price, np.nan)
        spent += side * notional + fee
        cost += signed_qty * slippage + fee
        fees += fee
        traded += notional
        mark = choose(valid[a, s], close[a, s], mark)
        marks[s] = mark
        worth = position_value(position, mark)
        value += worth
        gross += abs(worth)
        if learn:
            quoted = data_spread_bps[a, s] if spreads else np.nan
            y = slippage_y(fixed_bps, quoted, sigma) + coefs[C_IMPACT_ETA, s] * power
            ewma_observe_slippage(moments, s, power, choose(trade, y, np.nan), decay)
            if spreads:  # else no fill has a quoted spread to fold
                ewma_observe_spread(moments, s, choose(trade, quoted, np.nan), decay)
    return spent, cost, fees, traded, value, gross


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def portfolio_step(
    t: int,
    targets: np.ndarray,
    equity: float,
    cash: float,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    seed: np.uint64,
    learn: bool,
    cost_state: np.ndarray,
    decay: float,
    order_keys: np.ndarray,
    arrival: np.ndarray,
    draws: np.ndarray,
    positions: np.ndarray,
    marks: np.ndarray,
    fill_qty: np.ndarray,
    fill_price: np.ndarray,
    bar_stats: np.ndarray,
) -> float:
    """One decision at bar ``t`` and its execution in ``t + 1``, for callers that step
    bar by bar (the RL environment): :func:`arrival_conditions` into the scratch
    ``arrival[N_ARRIVAL, 1, S]``, then :func:`rebalance`; returns the cash after.
    ``cost_state`` and the scratch ``order_keys`` and ``draws[N_DRAW, 1, S]`` are as in
    :func:`simulate_portfolio` (``cost_state`` of any width when not learning)."""
    symbol_order_keys(seed, order_keys)
    fill_arrival_block(t, 1, open_, close, volume, valid, data_spread_bps, sigma_bps, coefs, params, order_keys, arrival, draws)
    return rebalance(
        t, targets, equity, cash, arrival, 0, close, valid, data_spread_bps, sigma_bps, coefs, params,
        positions, marks, fill_qty, fill_price, bar_stats, learn, decay, moment_rows(cost_state),
    )  # fmt: skip


@njit(cache=True, nogil=True, **VECTOR_LOOP)
def simulate_portfolio(
    targets: np.ndarray,
    initial_cash: float,
    open_: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    valid: np.ndarray,
    data_spread_bps: np.ndarray,
    sigma_bps: np.ndarray,
    coefs: np.ndarray,
    params: np.ndarray,
    seed: np.uint64,
    learn: bool,
    cost_state: np.ndarray,
    decay: float,
    order_keys: np.ndarray,
    arrival: np.ndarray,
    draws: np.ndarray,
    positions: np.ndarray,
    marks: np.ndarray,
    out_fill_qty: np.ndarray,
    out_fill_price: np.ndarray,
    out_bar_stats: np.ndarray,
) -> int:
    """Run the whole panel: decide at every bar ``t < T - 1`` from ``targets[t]`` (NaN
    holds), execute in ``t + 1``. Bar 0 starts flat with ``initial_cash``. Returns -1, or
    the first row of ``targets`` that is neither all finite nor all NaN: each block of
    rows is checked as it comes up, while it is in cache for the loop that reads it
    next, and the run stops at a bad one. Writes signed
    fills ``[T, S]`` (row 0 is empty; or ``[1, S]``, rewritten every bar, when the caller
    does not keep them) and per-bar statistics ``[N_BAR_STATS, T]`` (one contiguous
    series each); with
    ``learn``, every fill updates the moment-major ``cost_state[N_COST_STATE, S]``
    (see :func:`rebalance`).

    Scratch: ``order_keys`` (uint64 ``[S]``), ``arrival[N_ARRIVAL, block, S]``
    (conditions of ``block`` bars ahead), ``draws[N_DRAW, block, S]`` (float32, their
    draws), ``positions`` and ``marks`` ``[S]``."""
    n_bars = close.shape[0]
    block = arrival.shape[1]
    positions[:] = 0.0
    marks[:] = np.nan
    mark_to_market(0, close, valid, positions, marks)
    record_fills = out_fill_qty.shape[0] == n_bars
    out_fill_qty[0] = 0.0
    out_fill_price[0] = np.nan
    out_bar_stats[:, 0] = 0.0
    out_bar_stats[B_EQUITY, 0] = initial_cash
    cash = initial_cash
    moments = moment_rows(cost_state)
    symbol_order_keys(seed, order_keys)
    for first in range(0, n_bars - 1, block):
        n_decisions = min(block, n_bars - 1 - first)
        invalid = first_invalid_target_row(targets[first : first + n_decisions])
        if invalid >= 0:
            return first + invalid
        fill_arrival_block(
            first, n_decisions, open_, close, volume, valid, data_spread_bps, sigma_bps, coefs, params, order_keys, arrival, draws
        )  # fmt: skip
        for j in range(n_decisions):
            t = first + j
            fill_row = t + 1 if record_fills else 0
            cash = rebalance(
                t, targets[t], out_bar_stats[B_EQUITY, t], cash, arrival, j, close, valid, data_spread_bps, sigma_bps,
                coefs, params, positions, marks, out_fill_qty[fill_row], out_fill_price[fill_row],
                out_bar_stats[:, t + 1], learn, decay, moments,
            )  # fmt: skip
    return n_bars - 1 if first_invalid_target_row(targets[n_bars - 1 :]) >= 0 else -1
