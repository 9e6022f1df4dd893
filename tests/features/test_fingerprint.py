"""Dataset fingerprint: stable across runs and symbol order, sensitive to every value."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ai_trading.features.fingerprint import dataset_fingerprint
from ai_trading.types import MarketPanel
from tests.features.feature_reference import panels, random_panel

FIELDS = ("open", "high", "low", "close", "volume", "valid", "spread_bps")


def _fields(panel: MarketPanel) -> dict:  # type: ignore[type-arg]
    return {name: getattr(panel, name) for name in ("ts", "symbols", *FIELDS)}


@settings(max_examples=50, deadline=None)
@given(panel=panels(max_bars=12, max_symbols=5), data=st.data())
def test_any_single_value_change_changes_the_fingerprint(panel: MarketPanel, data: st.DataObject) -> None:
    names = [n for n in FIELDS if getattr(panel, n) is not None]
    name = data.draw(st.sampled_from(names))
    t = data.draw(st.integers(0, panel.n_bars - 1))
    s = data.draw(st.integers(0, panel.n_symbols - 1))
    fields = _fields(panel)
    array = fields[name].copy()
    if name == "valid":
        array[t, s] = not array[t, s]
    else:
        old = array[t, s]
        array[t, s] = 1.0 if np.isnan(old) else np.nextafter(old, np.inf)
    fields[name] = array
    assert dataset_fingerprint(MarketPanel(**fields)) != dataset_fingerprint(panel)


@settings(max_examples=30, deadline=None)
@given(panel=panels(max_bars=12, max_symbols=5), seed=st.integers(0, 2**32 - 1))
def test_symbol_order_does_not_change_the_fingerprint(panel: MarketPanel, seed: int) -> None:
    order = np.random.default_rng(seed).permutation(panel.n_symbols)
    fields = _fields(panel)
    for name in FIELDS:
        if fields[name] is not None:
            fields[name] = fields[name][:, order]
    fields["symbols"] = tuple(panel.symbols[i] for i in order)
    assert dataset_fingerprint(MarketPanel(**fields)) == dataset_fingerprint(panel)


def test_fingerprint_is_identical_across_runs_and_copies() -> None:
    panel = random_panel(np.random.default_rng(11), 50, 4, missing=0.1, with_spread=True)
    again = random_panel(np.random.default_rng(11), 50, 4, missing=0.1, with_spread=True)
    assert dataset_fingerprint(panel) == dataset_fingerprint(again) == dataset_fingerprint(panel)


def test_nan_payloads_and_negative_zero_are_canonical() -> None:
    panel = random_panel(np.random.default_rng(2), 5, 2, missing=0.5, with_spread=True)
    fields = _fields(panel)
    spread = fields["spread_bps"].copy()
    spread[0, 0], spread[1, 1] = 0.0, np.nan
    fields["spread_bps"] = spread
    base = dataset_fingerprint(MarketPanel(**fields))
    odd = spread.copy()
    odd[0, 0] = -0.0
    odd.view(np.uint64)[1, 1] = 0x7FF8_0000_0000_0BAD  # a NaN with a payload
    fields["spread_bps"] = odd
    assert dataset_fingerprint(MarketPanel(**fields)) == base


def test_timestamps_symbols_and_spread_presence_count() -> None:
    panel = random_panel(np.random.default_rng(4), 6, 2, with_spread=True)
    base = dataset_fingerprint(panel)
    variants = [
        {"ts": panel.ts + 1},
        {"symbols": ("SYM000", "OTHER")},
        {"spread_bps": None},
    ]
    for change in variants:
        assert dataset_fingerprint(MarketPanel(**{**_fields(panel), **change})) != base, change
