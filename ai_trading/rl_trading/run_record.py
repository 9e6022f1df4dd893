"""The record of a training run's configuration, written before its first seed trains.

``run.json`` in the run directory holds the sections that decide what a seed learns
(``[rl_train]``, ``[rl_env]``, ``[execution]``), the data store it read, the feature
schema hash and dataset fingerprint of the data it saw, and where its signing key came
from (the key's path and environment variable, never the key). ``ai-trading train
--resume`` trains the missing seeds with exactly this configuration and refuses when the
data or a given configuration differs, so a resumed run ends as an uninterrupted one
would: every seed trained alike and signed alike, as governance and the registry require.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ai_trading.artifacts.atomic import write_atomic
from ai_trading.config import AppConfig, ExecutionConfig, RLEnvConfig, RLTrainConfig
from ai_trading.errors import ConfigError, DatasetFingerprintMismatch, FeatureSchemaMismatch

RUN_FILE = "run.json"
RECORD_FORMAT = 1
SECTIONS = ("rl_train", "rl_env", "execution")


def _sections(config: AppConfig) -> dict[str, dict[str, Any]]:
    """The recorded sections as JSON values, so a record and a config compare alike."""
    return json.loads(json.dumps({name: asdict(getattr(config, name)) for name in SECTIONS}))


@dataclass(frozen=True)
class RunRecord:
    """What a run was started with.

    :param sections: ``rl_train``, ``rl_env`` and ``execution`` as JSON objects
    :param db_path: the market-data store the run read
    :param feature_schema_hash: of the features it trained on
    :param dataset_fingerprint: of the bars it trained on
    :param signing_key_path: ``[artifacts] signing_key_path`` of the run
    :param signing_key_env: ``[artifacts] signing_key_env`` of the run
    """

    sections: dict[str, dict[str, Any]]
    db_path: str
    feature_schema_hash: str
    dataset_fingerprint: str
    signing_key_path: str
    signing_key_env: str

    @classmethod
    def of(cls, config: AppConfig, provenance: Mapping[str, Any]) -> RunRecord:
        """The record of ``config``; ``provenance`` is ``FeatureSet.provenance()`` of its data."""
        return cls(_sections(config), str(config.data.db_path),
                   str(provenance["feature_schema_hash"]), str(provenance["dataset_fingerprint"]),
                   str(config.artifacts.signing_key_path), config.artifacts.signing_key_env)  # fmt: skip

    def write(self, run_dir: Path) -> None:
        document = {"format": RECORD_FORMAT, **asdict(self)}
        write_atomic(run_dir / RUN_FILE, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    @classmethod
    def read(cls, run_dir: Path) -> RunRecord:
        path = run_dir / RUN_FILE
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise ConfigError(
                f"{run_dir} has no {RUN_FILE}: it is not a run directory written by `ai-trading train`, "
                "so it cannot be resumed"
            ) from exc
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}): the run cannot be resumed") from exc
        if not isinstance(document, dict) or document.get("format") != RECORD_FORMAT:
            raise ConfigError(f"{path}: expected a run record of format {RECORD_FORMAT}")
        try:
            record = cls(
                {name: dict(document["sections"][name]) for name in SECTIONS},
                str(document["db_path"]), str(document["feature_schema_hash"]), str(document["dataset_fingerprint"]),
                str(document["signing_key_path"]), str(document["signing_key_env"]),
            )  # fmt: skip
            record.apply(AppConfig())  # every recorded setting must still exist
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}: malformed run record ({exc!r}); the run cannot be resumed") from exc
        return record

    def apply(self, config: AppConfig) -> AppConfig:
        """``config`` with the recorded sections, data store and signing key source."""
        return replace(
            config,
            rl_train=RLTrainConfig(**self.sections["rl_train"]),
            rl_env=RLEnvConfig(**self.sections["rl_env"]),
            execution=ExecutionConfig(**self.sections["execution"]),
            data=replace(config.data, db_path=Path(self.db_path)),
            artifacts=replace(
                config.artifacts, signing_key_path=Path(self.signing_key_path), signing_key_env=self.signing_key_env
            ),
        )

    def differences(self, config: AppConfig) -> list[str]:
        """Each recorded setting ``config`` changes, as ``section.key: run has A, given B``."""
        given = _sections(config)
        return [
            f"{name}.{key}: run has {value!r}, given {given[name].get(key)!r}"
            for name in SECTIONS
            for key, value in self.sections[name].items()
            if given[name].get(key) != value
        ]

    def check_data(self, provenance: Mapping[str, Any], run_dir: Path) -> None:
        """Refuse to resume on other features or other bars than the run started with."""
        if provenance["feature_schema_hash"] != self.feature_schema_hash:
            raise FeatureSchemaMismatch(
                f"{run_dir} was trained on features with schema hash {self.feature_schema_hash}, the builder now "
                f"gives {provenance['feature_schema_hash']}: train a new run instead of resuming this one"
            )
        if provenance["dataset_fingerprint"] != self.dataset_fingerprint:
            raise DatasetFingerprintMismatch(
                f"{run_dir} was trained on data with fingerprint {self.dataset_fingerprint}, the data read now "
                f"gives {provenance['dataset_fingerprint']} for the same range: the bars changed; "
                "train a new run instead of resuming this one"
            )
