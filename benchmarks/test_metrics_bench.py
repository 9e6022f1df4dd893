"""PBO by CSCV: the vectorised block-sum implementation against a per-combination NumPy loop.

Items are CSCV combinations (each ranks every configuration in and out of sample).
Full size: 10 years of daily returns for 200 configurations, 16 submatrices (12,870 combinations).
"""

from __future__ import annotations

from itertools import combinations, islice
from typing import Any

import numpy as np

from ai_trading.evaluation.metrics import cscv_logits

FULL = {"n_rows": 2520, "n_configs": 200, "n_submatrices": 16, "baseline_combinations": 400}
SMALL = {"n_rows": 240, "n_configs": 20, "n_submatrices": 8, "baseline_combinations": 20}


def loop_logits(m: np.ndarray, n_submatrices: int, limit: int) -> np.ndarray:
    """The textbook loop: build J and J-bar for each combination, recompute Sharpe from scratch."""
    rows = m.shape[0] // n_submatrices
    blocks = np.split(m[m.shape[0] - rows * n_submatrices :], n_submatrices)
    out = []
    for chosen in islice(combinations(range(n_submatrices), n_submatrices // 2), limit):
        train = np.vstack([blocks[i] for i in chosen])
        test = np.vstack([blocks[i] for i in range(n_submatrices) if i not in chosen])
        is_sr = train.mean(axis=0) / train.std(axis=0, ddof=1)
        oos_sr = test.mean(axis=0) / test.std(axis=0, ddof=1)
        best_oos = oos_sr[int(np.argmax(is_sr))]
        omega = (np.sum(oos_sr < best_oos) + (np.sum(oos_sr == best_oos) + 1) / 2) / (m.shape[1] + 1)
        out.append(np.log(omega / (1 - omega)))
    return np.array(out)


def test_cscv_throughput(throughput: Any) -> None:
    size = FULL if throughput.full_size else SMALL
    m = np.random.default_rng(0).normal(0.0003, 0.01, (size["n_rows"], size["n_configs"]))
    s, limit = size["n_submatrices"], size["baseline_combinations"]
    logits = throughput.measure(
        lambda: cscv_logits(m, s),
        items=len(list(combinations(range(s), s // 2))),
        baseline=lambda: loop_logits(m, s, limit),
        baseline_items=limit,
    )
    np.testing.assert_allclose(logits[:limit], loop_logits(m, s, limit), rtol=1e-8)
