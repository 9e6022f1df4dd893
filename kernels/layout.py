"""Named layouts of the flat arrays that carry parameters and state into kernels.

Kernels take parameters as one float64 vector so their signatures stay short and stable;
these names are the only way code indexes it.
"""

from __future__ import annotations

# Execution parameter vector (float64[N_EXEC_PARAMS]).
P_LATENCY_MEDIAN_BARS = 0  # median latency in bars (seconds over the bar length, divided once here, not per draw)
P_LATENCY_SIGMA = 1  # lognormal shape of latency
P_SPREAD_FLOOR_BPS = 2  # modeled spread floor, bps
P_SPREAD_VOL_MULT = 3  # modeled spread bps per bp of per-bar volatility
P_TICK_SIZE = 4  # price increment; the modeled spread is at least one tick
P_NOISE_BPS = 5  # std of zero-mean slippage noise, bps
P_MAX_PARTICIPATION = 6  # fraction of bar volume one order may take per bar
P_IMPACT_BETA = 7  # participation exponent of the impact term
P_FEE_BPS = 8  # fee, bps of notional
P_FEE_PER_SHARE = 9  # fee per share, currency
P_FEE_MIN = 10  # minimum fee per order that fills, currency
P_USE_DATA_SPREAD = 11  # 1.0: use the panel's spread_bps where finite; 0.0: always model
N_EXEC_PARAMS = 12

# Per-symbol slippage coefficients (float64[N_SYMBOL_COEFS, S]); from the config or the
# EWMA cost model:  slippage_bps = base + vol_coef * sigma_bps + eta * sigma_bps * participation**beta
C_SLIP_BASE_BPS = 0
C_SLIP_VOL_COEF = 1
C_IMPACT_ETA = 2
C_SPREAD_BPS = 3  # learned spread in bps; NaN = use data or the spread model
N_SYMBOL_COEFS = 4

# Order status codes written by the fill kernels.
S_FILLED = 0  # completely filled
S_PARTIAL = 1  # part filled, remainder canceled at end of time in force
S_UNFILLED = 2  # live for its whole time in force, nothing filled, canceled
S_NO_MARKET = 3  # never reached a tradable bar (data ended or symbol halted)
S_NO_DECISION_PRICE = 4  # decision bar missing: no decision price, order rejected

# EWMA cost-model moments (N_COST_STATE of them per symbol); exponentially weighted
# sums, divided by their weight W at prediction (bias correction).
M_WEIGHT = 0  # sum of weights of slippage observations
M_X = 1  # x = participation**beta
M_Y = 2  # y = (cost_bps - half_spread_bps) / sigma_bps: volatility-normalised slippage
M_XX = 3
M_XY = 4
M_SPREAD_WEIGHT = 5  # sum of weights of spread observations
M_SPREAD = 6  # spread bps
N_COST_STATE = 7
# The cost model keeps them symbol-major, float64[S, COST_ROW_WIDTH]: the moments and one
# unused lane, so that a symbol's row is one 64-byte cache line and one 8-lane vector.
COST_ROW_WIDTH = 8
