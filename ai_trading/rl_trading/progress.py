"""Progress of a training run on stderr: a line per finished seed, and a periodic line
of timesteps while a seed trains (only when stderr is a terminal, so logs stay clean)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO

from stable_baselines3.common.callbacks import BaseCallback

PROGRESS_INTERVAL_S = 10.0


class TimestepProgress(BaseCallback):
    """Writes ``seed 3: 40,960/200,000 timesteps (20%), 35 s`` at most every ``interval_s``.

    :param seed: the seed being trained
    :param total: timesteps the seed trains for, over all its checkpoints
    :param stream: where to write; stderr (as it is when the callback is made) by default
    """

    def __init__(self, seed: int, total: int, interval_s: float = PROGRESS_INTERVAL_S, stream: TextIO | None = None) -> None:
        super().__init__()
        self._seed, self._total, self._interval = seed, total, interval_s
        self._stream = stream if stream is not None else sys.stderr
        self._started = self._last = time.monotonic()

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            done = min(self.num_timesteps, self._total)
            self._stream.write(
                f"seed {self._seed}: {done:,}/{self._total:,} timesteps ({done / self._total:.0%}), {now - self._started:.0f} s\n"
            )
            self._stream.flush()
        return True


def seed_finished_line(seed: int, metrics: Mapping[str, float], seconds: float, done: int, total: int) -> str:
    """``seed 3 finished [2/5]: validation Sharpe 0.41, test Sharpe -0.22, 12.3 s``."""
    return (
        f"seed {seed} finished [{done}/{total}]: validation Sharpe {metrics['validation_sharpe']:.2f}, "
        f"test Sharpe {metrics['test_sharpe']:.2f}, {seconds:.1f} s"
    )
