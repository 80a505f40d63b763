"""Content keys change when a result would, and only then (issue 12 §3).

`data/golden_keys.json` holds the keys of the job files in `data/golden_jobs/` (copies of
jobs/ plus a coverage job), computed by the code as it was before keys had definition
versions or derived fields: finished trials keep their keys, or they would all retrain.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from orchestrator.spec import keys, versions
from orchestrator.spec.load import load_job
from orchestrator.spec.model import DataSpec, Recipe, TrialSpec
from orchestrator.zoo.registry import PRESETS

DATA = Path(__file__).parent / "data"
GOLDEN: dict[str, dict[str, str]] = json.loads((DATA / "golden_keys.json").read_text())


def _trials() -> list[tuple[str, TrialSpec]]:
    return [(f, t) for f in sorted(GOLDEN) for t in load_job(DATA / "golden_jobs" / f).trials]


def _keys() -> dict[tuple[str, str], str]:
    return {(f, t.name): keys.trial_key(t) for f, t in _trials()}


def _golden() -> dict[tuple[str, str], str]:
    return {(f, name): key for f, ks in GOLDEN.items() for name, key in ks.items()}


def test_every_golden_file_is_covered() -> None:
    assert sorted(GOLDEN) == sorted(p.name for p in (DATA / "golden_jobs").glob("*.toml"))
    assert len(_golden()) > 50


def test_keys_are_the_golden_keys() -> None:
    assert _keys() == _golden()


def _widened(spec: object, field: str, value: object) -> object:
    """`spec` as an instance of its class with one more field (default: `value`)."""
    cls = type(spec)
    wider = dataclasses.make_dataclass(
        f"Wider{cls.__name__}", [(field, type(value), value)], bases=(cls,), frozen=True
    )
    values = {f.name: getattr(spec, f.name) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return wider(**values)


@pytest.mark.parametrize(
    ("part", "field", "default"),
    [("recipe", "label_smoothing", 0.0), ("recipe", "ema", False), ("data", "crop", "none")],
)
def test_a_new_field_with_its_default_moves_no_key(part: str, field: str, default: object) -> None:
    for f, trial in _trials():
        wider = dataclasses.replace(trial, **{part: _widened(getattr(trial, part), field, default)})
        assert keys.trial_key(wider) == GOLDEN[f][trial.name]


def test_a_new_field_set_to_another_value_moves_the_key() -> None:
    (_, trial), *_ = _trials()
    recipe = _widened(trial.recipe, "label_smoothing", 0.0)
    smoothed = dataclasses.replace(recipe, label_smoothing=0.1)  # type: ignore[type-var]
    assert keys.trial_key(dataclasses.replace(trial, recipe=smoothed)) != trial.key
    # ... and every field the key began with enters it even at its default
    material = keys.key_material(trial)
    assert set(material["recipe"]) >= {f.name for f in dataclasses.fields(Recipe)} - {"lr_schedule"}
    assert set(material["data"]) == {f.name for f in dataclasses.fields(DataSpec)} - {"data_dir"}


def _family(model: str) -> str:
    return PRESETS[model].family if model in PRESETS else model


def _moved(monkeypatch: pytest.MonkeyPatch, attr: str, value: object) -> set[tuple[str, str]]:
    monkeypatch.setattr(versions, attr, value)
    now = _keys()
    return {k for k, v in _golden().items() if now[k] != v}


@pytest.mark.parametrize("family", ["resnet", "densenet", "lenet"])
def test_bumping_a_family_moves_exactly_its_keys(
    family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = _moved(monkeypatch, "FAMILIES", {**versions.FAMILIES, family: 2})
    expected = {(f, t.name) for f, t in _trials() if _family(t.model) == family}
    assert expected and moved == expected


def test_bumping_a_dataset_loader_moves_exactly_its_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    moved = _moved(monkeypatch, "DATASETS", {**versions.DATASETS, "cifar100": 2})
    expected = {(f, t.name) for f, t in _trials() if t.data.name == "cifar100"}
    assert expected and moved == expected


def test_bumping_the_training_loop_moves_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _moved(monkeypatch, "LOOP", 2) == set(_golden())


def test_every_family_and_dataset_has_a_version() -> None:
    from orchestrator.data import DATASETS
    from orchestrator.zoo.registry import FAMILIES

    assert set(versions.FAMILIES) == set(FAMILIES)
    assert set(versions.DATASETS) == set(DATASETS)
