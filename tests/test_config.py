"""Configuration loading: defaults, TOML, environment, and clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ai_trading.config import AppConfig, load_config
from ai_trading.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "config.toml"


def test_defaults_without_file_or_environment() -> None:
    assert load_config(environ={}) == AppConfig()


def test_toml_then_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[execution]\nfee_bps = 2.5\nseed = 4\nuse_data_spread = false\n")
    env = {"AI_TRADING_EXECUTION__SEED": "9", "AI_TRADING_DATA_DB": str(tmp_path / "m.duckdb"), "AI_TRADING_OMS_DSN": "postgresql://x@h/db"}
    config = load_config(path, environ=env)
    assert config.execution.fee_bps == 2.5
    assert config.execution.seed == 9
    assert config.execution.use_data_spread is False
    assert config.data.db_path == tmp_path / "m.duckdb"
    assert config.oms.dsn == "postgresql://x@h/db"


def test_a_setting_variable_with_one_underscore_is_refused_with_its_spelling() -> None:
    with pytest.raises(ConfigError, match="AI_TRADING_EXECUTION_FEE_BPS names no setting.*AI_TRADING_EXECUTION__FEE_BPS"):
        load_config(environ={"AI_TRADING_EXECUTION_FEE_BPS": "0.5"})
    with pytest.raises(ConfigError, match="AI_TRADING_COST_MODEL__HALFLIFE_FILLS"):
        load_config(environ={"AI_TRADING_COST_MODEL_HALFLIFE_FILLS": "50"})
    unrelated = {"AI_TRADING_SIGNING_KEY": "k", "AI_TRADING_REQUIRE_POSTGRES": "1", "AI_TRADING_EXECUTION_NOTE": "x"}
    assert load_config(environ=unrelated) == AppConfig()


BAD_INPUTS = [
    ("[execution]\nnot_a_field = 1\n", "unknown setting 'not_a_field'"),
    ("[nosuchsection]\nx = 1\n", r"unknown config section \[nosuchsection\]"),
    ("[execution]\nseed = 'abc'\n", "execution.seed"),
    ("[execution]\ntif_bars = 2.5\n", "not an integer"),
    ("[execution]\nuse_data_spread = 'maybe'\n", "not a boolean"),
    ("execution = 3\n", "must be a \\[section\\] table"),
    ("[execution\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD_INPUTS)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, environ={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml", environ={})


def test_example_file_documents_every_default() -> None:
    """examples/config.toml lists every setting with its default value (paths excepted)."""
    loaded = load_config(EXAMPLE, environ={})
    defaults = AppConfig()
    text = EXAMPLE.read_text()
    for section in dataclasses.fields(defaults):
        assert f"[{section.name}]" in text
        for field in dataclasses.fields(getattr(defaults, section.name)):
            assert f"{field.name} =" in text, f"examples/config.toml lacks {section.name}.{field.name}"
            expected = getattr(getattr(defaults, section.name), field.name)
            if not isinstance(expected, Path) and field.name != "dsn":
                assert getattr(getattr(loaded, section.name), field.name) == expected, f"{section.name}.{field.name}"
