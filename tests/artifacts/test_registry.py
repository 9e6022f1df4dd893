"""Model registry: only verified, passing runs are promoted; current and previous rotate;
rollback is explicit and undoable; load_current refuses anything but the pinned copy;
the state is durable, fails closed and loses no update under concurrent promotions."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ai_trading.artifacts import Ed25519Signer, Trust, TrustState, load_verified, sign_artifact_dir
from ai_trading.artifacts.keys import parse_trusted_key
from ai_trading.artifacts.manifest import MANIFEST_FILE, SIGNATURE_FILE
from ai_trading.artifacts.registry import AUDIT_FILE, STATE_FILE, ModelRegistry
from ai_trading.errors import (
    FeatureSchemaMismatch,
    PromotionRejected,
    ProvenanceError,
    RegistryError,
    RollbackError,
    SignatureError,
)
from ai_trading.models.gates import RLRunGate
from ai_trading.rl.governance import EVALUATION_FILE, evaluate
from ai_trading.rl.seed_artifact import MODEL_FILE, seed_dir
from tests.artifacts.conftest import SCHEMA_HASH, manifest_fields, write_model
from tests.artifacts.run_helpers import BEST_SEED, PROVENANCE, policy_bytes, seed_runs, write_run
from tests.rl.test_governance import CRITERIA

OTHER_HASH = "f" * 64


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


def _run(tmp_path: Path, signer: Ed25519Signer, version: int, drift: float = 0.002, model: str = "momentum") -> Path:
    return write_run(tmp_path / f"runs/{model}-v{version}", signer, seed_runs(drift, rng_seed=version), model, version)


def _promote(registry: ModelRegistry, run_dir: Path, trust: Trust, seed: int | None = None):  # type: ignore[no-untyped-def]
    return registry.promote(run_dir, trust, SCHEMA_HASH, RLRunGate(CRITERIA, seed))


def _snapshot(registry: ModelRegistry, trust: Trust) -> dict[str, bytes | list[str] | None]:
    """Every byte the registry and the rollback state hold."""
    files = [registry.directory / STATE_FILE, registry.directory / AUDIT_FILE, trust.state.path]
    snapshot: dict[str, bytes | list[str] | None] = {str(p): p.read_bytes() if p.exists() else None for p in files}
    store = registry.directory / "store"
    snapshot["store"] = sorted(str(p.relative_to(store)) for p in store.rglob("*")) if store.exists() else []
    return snapshot


def _audit(registry: ModelRegistry) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in registry.audit_path.read_text().splitlines()]


def test_promote_stores_a_verified_passing_run(registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path) -> None:
    run_dir = _run(tmp_path, signer, 1)
    result = _promote(registry, run_dir, trust)
    assert result.changed and result.choice == f"seed {BEST_SEED}" and result.admission.passed
    current = result.slots.current
    assert (current.name, current.version, current.action) == (f"momentum.seed{BEST_SEED}", 1, "promote")
    assert result.slots.previous is None
    assert current.path == f"store/momentum/{current.manifest_sha256}"
    assert current.source == str(run_dir.resolve())
    (seed_dir(run_dir, BEST_SEED) / MODEL_FILE).write_bytes(b"edited after promotion")
    artifact = registry.load_current("momentum", trust, SCHEMA_HASH)
    assert artifact.read(MODEL_FILE) == policy_bytes("momentum", 1, BEST_SEED)
    assert artifact.path == registry.directory / current.path
    [line] = _audit(registry)
    assert line["action"] == "promote" and line["current"] == current.to_dict() and line["choice"] == f"seed {BEST_SEED}"
    assert line["kind"] == "rl" and line["gate"]["n_seeds"] == 6


def test_an_explicit_seed_is_promoted_and_an_absent_one_refused(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    run_dir = _run(tmp_path, signer, 1)
    assert _promote(registry, run_dir, trust, seed=4).slots.current.name == "momentum.seed4"
    with pytest.raises(ProvenanceError, match="has no seed 9"):
        _promote(registry, run_dir, trust, seed=9)


def test_a_failing_run_is_refused_with_its_reasons(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    _promote(registry, _run(tmp_path, signer, 1), trust)
    before = _snapshot(registry, trust)
    losing = seed_runs(-0.002, rng_seed=2)
    expected = [r.code for r in evaluate(losing, CRITERIA).rejections]
    with pytest.raises(PromotionRejected, match="fails the promotion gate") as caught:
        _promote(registry, write_run(tmp_path / "losing", signer, losing, version=2), trust)
    assert [r["code"] for r in caught.value.rejections] == expected
    assert "NET_RETURN_NOT_POSITIVE" in expected and "NET_RETURN_NOT_POSITIVE" in str(caught.value)
    assert _snapshot(registry, trust) == before


def _unsign(run_dir: Path, signer: Ed25519Signer) -> None:
    (seed_dir(run_dir, 0) / SIGNATURE_FILE).unlink()


def _better_results(run_dir: Path, signer: Ed25519Signer) -> None:
    path = seed_dir(run_dir, 3) / EVALUATION_FILE
    document = json.loads(path.read_text())
    document["returns"] = [abs(r) for r in document["returns"]]
    path.write_text(json.dumps(document))


def _drop_bad_seed(run_dir: Path, signer: Ed25519Signer) -> None:
    shutil.rmtree(seed_dir(run_dir, 5))


def _foreign_seed(run_dir: Path, signer: Ed25519Signer) -> None:
    other = write_run(run_dir.parent / "other", signer, seed_runs(0.002, rng_seed=9), version=2,
                      provenance={**PROVENANCE, "dataset_fingerprint": "d" * 64})  # fmt: skip
    shutil.rmtree(seed_dir(run_dir, 1))
    shutil.copytree(seed_dir(other, 1), seed_dir(run_dir, 1))


def _untrusted_signer(run_dir: Path, signer: Ed25519Signer) -> None:
    shutil.rmtree(run_dir)
    write_run(run_dir, Ed25519Signer.generate(), seed_runs(0.002, rng_seed=2), version=2)


def _renamed_seed(run_dir: Path, signer: Ed25519Signer) -> None:
    seed_dir(run_dir, 5).rename(seed_dir(run_dir, 9))


def _not_a_training_artifact(run_dir: Path, signer: Ed25519Signer) -> None:
    shutil.rmtree(run_dir)
    sign_artifact_dir(write_model(seed_dir(run_dir, 0)), manifest_fields(version=2), signer)


# (how the version-2 run is spoiled, expected error, message)
REFUSED_RUNS: list[tuple[Callable[[Path, Ed25519Signer], None], type[Exception], str]] = [
    (_unsign, SignatureError, "is not signed"),
    (_better_results, ProvenanceError, "evaluation.json has"),
    (_drop_bad_seed, ProvenanceError, r"declares seeds \[0, 1, 2, 3, 4, 5\] but holds \[0, 1, 2, 3, 4\]"),
    (_foreign_seed, ProvenanceError, "comes from another run"),
    (_untrusted_signer, SignatureError, "not trusted"),
    (_renamed_seed, ProvenanceError, "does not match its run"),
    (_not_a_training_artifact, ProvenanceError, "only seed artifacts written by `ai-trading train`"),
    (lambda run_dir, signer: shutil.rmtree(run_dir), ProvenanceError, "holds no seed_"),
]


@pytest.mark.parametrize(("spoil", "error", "message"), REFUSED_RUNS)
def test_unverifiable_runs_are_refused_and_nothing_changes(
    registry: ModelRegistry,
    trust: Trust,
    signer: Ed25519Signer,
    tmp_path: Path,
    spoil: Callable[[Path, Ed25519Signer], None],
    error: type[Exception],
    message: str,
) -> None:
    _promote(registry, _run(tmp_path, signer, 1), trust)
    run_dir = _run(tmp_path, signer, 2)
    spoil(run_dir, signer)
    before = _snapshot(registry, trust)
    with pytest.raises(error, match=message):
        _promote(registry, run_dir, trust)
    assert _snapshot(registry, trust) == before


def test_a_run_on_other_features_is_refused(registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path) -> None:
    run_dir = _run(tmp_path, signer, 1)
    with pytest.raises(FeatureSchemaMismatch, match="retrain on the current features"):
        registry.promote(run_dir, trust, OTHER_HASH, RLRunGate(CRITERIA))
    assert _snapshot(registry, trust) == {str(registry.directory / STATE_FILE): None, str(registry.audit_path): None,
                                          str(trust.state.path): None, "store": []}  # fmt: skip


def test_current_and_previous_rotate_and_the_oldest_is_dropped(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    results = [_promote(registry, _run(tmp_path, signer, version), trust) for version in (1, 2, 3)]
    slots = registry.slots("momentum")
    assert (slots.current.version, slots.previous.version) == (3, 2)  # type: ignore[union-attr]
    first = results[0].slots.current
    assert results[2].dropped == first
    assert not (registry.directory / first.path).exists()
    assert (registry.directory / slots.previous.path).is_dir()  # type: ignore[union-attr]
    assert [line["current"]["version"] for line in _audit(registry)] == [1, 2, 3]
    assert _audit(registry)[2]["dropped"] == first.to_dict()


def test_promoting_the_current_model_again_changes_nothing(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    run_dir = _run(tmp_path, signer, 1)
    _promote(registry, run_dir, trust)
    before = _snapshot(registry, trust)
    result = _promote(registry, run_dir, trust)
    assert not result.changed and result.slots.previous is None
    assert _snapshot(registry, trust) == before


def test_rollback_restores_the_previous_model_and_a_second_undoes_it(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    for version in (1, 2):
        _promote(registry, _run(tmp_path, signer, version), trust)
    slots = registry.rollback("momentum", trust, SCHEMA_HASH)
    assert (slots.current.version, slots.current.action, slots.previous.version) == (1, "rollback", 2)  # type: ignore[union-attr]
    assert registry.load_current("momentum", trust, SCHEMA_HASH).read(MODEL_FILE) == policy_bytes("momentum", 1, BEST_SEED)
    rollback = _audit(registry)[-1]
    assert rollback["action"] == "rollback"
    assert rollback["trust_pin"] == {"artifact": f"momentum.seed{BEST_SEED}", "version": 1,
                                     "manifest_sha256": slots.current.manifest_sha256, "replaced_version": 2}  # fmt: skip

    slots = registry.rollback("momentum", trust, SCHEMA_HASH)
    assert (slots.current.version, slots.previous.version) == (2, 1)  # type: ignore[union-attr]
    assert registry.load_current("momentum", trust, SCHEMA_HASH).read(MODEL_FILE) == policy_bytes("momentum", 2, BEST_SEED)
    assert [line["action"] for line in _audit(registry)] == ["promote", "promote", "rollback", "rollback"]


def test_rollback_needs_a_known_model_with_a_previous_one(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    with pytest.raises(RegistryError, match="no model 'momentum' in the registry"):
        registry.rollback("momentum", trust, SCHEMA_HASH)
    _promote(registry, _run(tmp_path, signer, 1), trust)
    before = _snapshot(registry, trust)
    with pytest.raises(RegistryError, match="no previous model to roll back to"):
        registry.rollback("momentum", trust, SCHEMA_HASH)
    with pytest.raises(RegistryError, match="no model 'other'"):
        registry.load_current("other", trust, SCHEMA_HASH)
    assert _snapshot(registry, trust) == before


def test_older_builds_stay_refused_outside_the_registry(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    """A promotion records every seed's version; a rollback authorises exactly one manifest."""
    old_run = _run(tmp_path, signer, 1)
    for run_dir in (old_run, _run(tmp_path, signer, 2)):
        _promote(registry, run_dir, trust)
    for seed in (BEST_SEED, 0):
        with pytest.raises(RollbackError, match="older than the last accepted version 2"):
            load_verified(seed_dir(old_run, seed), trust, SCHEMA_HASH)
    registry.rollback("momentum", trust, SCHEMA_HASH)
    assert load_verified(seed_dir(old_run, BEST_SEED), trust, SCHEMA_HASH).manifest.fields.version == 1
    with pytest.raises(RollbackError, match="older than the last accepted version 2"):
        load_verified(seed_dir(old_run, 0), trust, SCHEMA_HASH)


def test_promoting_an_older_run_is_refused(registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path) -> None:
    old_run = _run(tmp_path, signer, 1)
    _promote(registry, _run(tmp_path, signer, 2), trust)
    before = _snapshot(registry, trust)
    with pytest.raises(RollbackError, match="registry rollback"):
        _promote(registry, old_run, trust)
    assert _snapshot(registry, trust) == before


def test_load_current_refuses_a_changed_stored_copy(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    run_dir = _run(tmp_path, signer, 1)
    stored = registry.directory / _promote(registry, run_dir, trust).slots.current.path
    model = stored / MODEL_FILE
    model.chmod(0o644)
    model.write_bytes(b"tampered")
    with pytest.raises(ProvenanceError, match="model.zip has"):
        registry.load_current("momentum", trust, SCHEMA_HASH)
    model.write_bytes(policy_bytes("momentum", 1, BEST_SEED))
    assert registry.load_current("momentum", trust, SCHEMA_HASH).read(MODEL_FILE) == policy_bytes("momentum", 1, BEST_SEED)
    for name in (MANIFEST_FILE, SIGNATURE_FILE):  # another validly signed build in its place
        (stored / name).chmod(0o644)
        shutil.copyfile(seed_dir(run_dir, 0) / name, stored / name)
    with pytest.raises(ProvenanceError, match="the caller pinned"):
        registry.load_current("momentum", trust, SCHEMA_HASH)


def test_rollback_refuses_a_changed_previous_copy(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    for version in (1, 2):
        _promote(registry, _run(tmp_path, signer, version), trust)
    previous = registry.directory / registry.slots("momentum").previous.path  # type: ignore[union-attr]
    (previous / "extra.bin").write_bytes(b"not signed")
    before = _snapshot(registry, trust)
    with pytest.raises(ProvenanceError, match="extra.bin is present but not signed"):
        registry.rollback("momentum", trust, SCHEMA_HASH)
    assert _snapshot(registry, trust) == before


def test_state_survives_a_new_registry_instance(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    for version in (1, 2):
        _promote(registry, _run(tmp_path, signer, version), trust)
    restarted = ModelRegistry(registry.directory)
    assert restarted.show() == registry.show()
    assert restarted.slots("momentum").current.version == 2
    fresh_trust = Trust(keys=trust.keys, state=TrustState(trust.state.path))
    assert restarted.load_current("momentum", fresh_trust, SCHEMA_HASH).manifest.fields.version == 2
    restarted.rollback("momentum", fresh_trust, SCHEMA_HASH)
    assert ModelRegistry(registry.directory).slots("momentum").current.version == 1


UNREADABLE_STATES = [
    "{not json",
    '{"schema": "ai-trading/registry/v0", "models": {}}',
    '{"schema": "ai-trading/registry/v1", "models": {"m": {"current": {"name": "m.seed1"}, "previous": null}}}',
]


@pytest.mark.parametrize("text", UNREADABLE_STATES)
def test_an_unreadable_state_fails_closed(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path, text: str
) -> None:
    state = registry.directory / STATE_FILE
    state.parent.mkdir(parents=True)
    state.write_text(text)
    run_dir = _run(tmp_path, signer, 1)
    for operation in (
        registry.show,
        lambda: registry.load_current("m", trust, SCHEMA_HASH),
        lambda: registry.rollback("m", trust, SCHEMA_HASH),
        lambda: _promote(registry, run_dir, trust),
    ):
        with pytest.raises(RegistryError, match="is unreadable"):
            operation()
    assert state.read_text() == text and not registry.audit_path.exists() and not trust.state.path.exists()


def test_a_stored_path_outside_the_store_fails_closed(
    registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path
) -> None:
    _promote(registry, _run(tmp_path, signer, 1), trust)
    state = registry.directory / STATE_FILE
    document = json.loads(state.read_text())
    document["models"]["momentum"]["current"]["path"] = str(tmp_path / "runs")
    state.write_text(json.dumps(document))
    with pytest.raises(RegistryError, match="is not its content address"):
        registry.load_current("momentum", trust, SCHEMA_HASH)


def _promote_in_process(registry_dir: Path, run_dir: Path, trust_path: Path, public_pem: bytes, barrier) -> None:  # type: ignore[no-untyped-def]
    key = parse_trusted_key(public_pem, "test key")
    trust = Trust(keys={key.key_id: key}, state=TrustState(trust_path))
    barrier.wait()
    ModelRegistry(registry_dir).promote(run_dir, trust, SCHEMA_HASH, RLRunGate(CRITERIA))


def test_concurrent_promotions_lose_no_update(registry: ModelRegistry, trust: Trust, signer: Ed25519Signer, tmp_path: Path) -> None:
    models = [f"model-{i}" for i in range(4)]
    runs = [_run(tmp_path, signer, 1, model=model) for model in models]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(runs))
    public = signer.verifier().to_pem()
    processes = [
        context.Process(target=_promote_in_process, args=(registry.directory, run, trust.state.path, public, barrier))
        for run in runs
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * len(processes)
    assert sorted(registry.show()) == models
    assert sorted(line["model"] for line in _audit(registry)) == models
    for model in models:
        assert trust.state.last_accepted(f"{model}.seed0").version == 1  # type: ignore[union-attr]
        assert registry.load_current(model, trust, SCHEMA_HASH).read(MODEL_FILE) == policy_bytes(model, 1, BEST_SEED)
