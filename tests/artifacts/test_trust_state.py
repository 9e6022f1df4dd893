"""Rollback state: monotonic per model, durable, safe under concurrent writers, fails closed."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ai_trading.artifacts.trust_state import TrustState
from ai_trading.errors import RollbackError

DIGEST_A, DIGEST_B = "a" * 64, "b" * 64


def test_versions_only_move_forward(tmp_path: Path) -> None:
    state = TrustState(tmp_path / "trust.json")
    state.accept("m", 2, DIGEST_A)
    state.accept("m", 2, DIGEST_A)
    state.accept("other", 1, DIGEST_A)
    with pytest.raises(RollbackError, match="version 1 is older than the last accepted version 2"):
        state.accept("m", 1, DIGEST_B)
    state.accept("m", 3, DIGEST_B)
    assert TrustState(tmp_path / "trust.json").last_accepted("m").version == 3  # type: ignore[union-attr]
    assert stat.S_IMODE((tmp_path / "trust.json").stat().st_mode) == 0o600


def test_concurrent_writers_keep_the_highest_version(tmp_path: Path) -> None:
    state = TrustState(tmp_path / "trust.json")
    versions = list(range(1, 41))

    def accept(version: int) -> None:
        try:
            TrustState(state.path).accept(f"m{version % 4}", version, f"{version:064x}")
        except RollbackError:
            pass  # a higher version of that model was accepted first: exactly what must happen

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(accept, versions))
    for model in range(4):
        assert state.last_accepted(f"m{model}").version == max(v for v in versions if v % 4 == model)  # type: ignore[union-attr]


def test_unreadable_state_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "trust.json"
    path.write_text("{not json")
    with pytest.raises(RollbackError, match="is unreadable"):
        TrustState(path).accept("m", 1, DIGEST_A)
