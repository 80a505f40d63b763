"""Fuzzing the loader: whatever the input, the result is a JobSpec or a clear SpecError.

Three sources of input: arbitrary text (mostly invalid TOML), TOML-shaped random nested
tables fed to `parse_job`, and mutations of a valid job file (a real key replaced by a
random value), which reach the deep checks (schedules, zoo arguments, cluster, grids).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.spec.load import load_job, parse_job
from orchestrator.spec.model import JobSpec

SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Keys the loader knows, so random tables hit real code paths, plus some it does not.
KEYS = [
    "job",
    "name",
    "defaults",
    "trial",
    "grid",
    "cluster",
    "node_type",
    "model",
    "dataset",
    "epochs",
    "batch_size",
    "seed",
    "seeds",
    "repeats",
    "recipe",
    "lr",
    "schedule",
    "kind",
    "boundaries",
    "values",
    "boundary",
    "resources",
    "gpus",
    "cpus",
    "memory_gb",
    "gpu_type",
    "reference",
    "accuracy",
    "error",
    "axes",
    "zip",
    "per_model",
    "exclude",
    "model_args",
    "depth",
    "seed_variant",
    "data",
    "validation_size",
    "train_size",
    "count",
    "resnet20",
    "recipe.lr",
    "reference.accuracy",
    "x",
    "",
]
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "resnet20",
            "lenet5",
            "densenet",
            "digits",
            "cifar10",
            "step",
            "any",
            "{model}",
            "{recipe.lr}-{x",
            "GTX 1080 Ti",
            "",
            "le",
        ]
    ),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5),
    ),
    max_leaves=30,
)
DOCUMENTS = st.dictionaries(
    st.sampled_from(["job", "defaults", "trial", "grid", "cluster", "trials"]),
    VALUES,
    max_size=5,
)

VALID = """
[job]
name = "fuzz"
[[cluster.node_type]]
name = "box"
gpu_type = "GTX 1080 Ti"
gpus = 2
cpus = 8
[defaults]
dataset = "digits"
epochs = 2
recipe = { lr = 0.1, schedule = { kind = "step", boundaries = [1], values = [0.1, 0.01] } }
resources = { gpus = 1, cpus = 2, gpu_type = "any" }
[[trial]]
name = "t-{model}"
model = "resnet20"
seeds = [0, 1]
[[grid]]
name = "{model}-{recipe.lr}-{recipe.momentum}"
exclude = [{ model = "lenet5", "recipe.lr" = 0.05 }]
[grid.axes]
model = ["lenet5", "densenet"]
"recipe.lr" = [0.1, 0.05]
[grid.zip]
"reference.accuracy" = [90.0, 91.0]
"recipe.momentum" = [0.9, 0.8]
[grid.per_model.lenet5]
epochs = 1
[grid.per_model.densenet]
model_args = { depth = 40, growth_rate = 12, bottleneck = true, compression = 0.5 }
"""
BASE = tomllib.loads(VALID)


def outcome(run: Any) -> None:
    try:
        job = run()
    except SpecError as e:
        assert e.problems and all(isinstance(p, str) and p for p in e.problems)
        return
    assert isinstance(job, JobSpec) and job.trials


@SETTINGS
@given(st.text(max_size=300))
def test_any_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "job.toml"
    path.write_text(text, encoding="utf-8")
    outcome(lambda: load_job(path))


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "job.toml"
    path.write_bytes(data)
    outcome(lambda: load_job(path))


@SETTINGS
@given(DOCUMENTS)
def test_random_tables(raw: dict[str, Any]) -> None:
    outcome(lambda: parse_job(raw, "fuzz.toml"))


def _paths(table: Any, prefix: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(table, dict):
        for k, v in table.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(table, list):
        for i, v in enumerate(table):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


PATHS = _paths(BASE)


def _replaced(table: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(table) if isinstance(table, dict) else list(table)
    copy[path[0]] = _replaced(copy[path[0]], path[1:], value)
    return copy


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_mutated_valid_file(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    raw: Any = BASE
    for path, value in edits:
        try:
            raw = _replaced(raw, path, value)
        except (KeyError, IndexError, TypeError):  # an earlier edit removed the path
            continue
    outcome(lambda: parse_job(raw, "fuzz.toml"))


def test_the_mutation_base_is_valid() -> None:
    job = parse_job(BASE, "fuzz.toml")
    # 2 seeds of the trial; the grid's 2 models x 2 LRs x 2 zip positions, less the 2
    # lenet5 cells at LR 0.05.
    assert len(job.trials) == 2 + 8 - 2


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 50_000 + "]" * 50_000,  # deeper than the TOML parser's recursion
        "a = " + "{ b = " * 3_000 + "1" + " }" * 3_000,
        "x." * 5_000 + "y = 1",  # a dotted key 5,000 tables deep
        "[[trial]]\nrepeats = 9223372036854775807\nmodel = 'lenet5'\n",
        "[defaults]\nepochs = 1e400\n",
        "\x00\x01",
    ],
    ids=["arrays", "inline-tables", "dotted-key", "int64-repeats", "inf", "control"],
)
def test_pathological_inputs(tmp_path: Path, text: str) -> None:
    path = tmp_path / "job.toml"
    path.write_text(text)
    with pytest.raises(SpecError):
        load_job(path)


def _model_requests() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """A preset or family name with random values for its real argument names."""
    from orchestrator.zoo import registry

    names = sorted([*registry.PRESETS, *registry.FAMILIES])

    @st.composite
    def request(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
        name = draw(st.sampled_from(names))
        preset = registry.PRESETS.get(name)
        arguments = sorted(registry.family_arguments(preset.family if preset else name))
        return name, draw(st.dictionaries(st.sampled_from(arguments), VALUES, max_size=3))

    return request()


@SETTINGS
@given(_model_requests(), st.sampled_from(["digits", "cifar100"]))
def test_random_model_arguments(request: tuple[str, dict[str, Any]], dataset: str) -> None:
    model, args = request
    raw = {"trial": [{"model": model, "model_args": args, "dataset": dataset, "epochs": 1}]}
    outcome(lambda: parse_job(raw, "fuzz.toml"))
