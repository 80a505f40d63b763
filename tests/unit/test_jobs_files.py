"""Every job file in jobs/ validates, expands to the trials it promises, and (where it
reproduces a published table) carries the published numbers on every trial."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.spec.cost import estimate_cost
from orchestrator.spec.load import load_job
from orchestrator.spec.model import JobSpec
from orchestrator.training.schedules import schedule_from_dict
from tests.conftest import ROOT, run_orch

JOB_FILES = sorted((ROOT / "jobs").glob("*.toml"))
# Trials per file, where known; a new file is still validated by the generic tests.
COUNTS = {
    "quickstart": 3,
    "full_table": 14,
    "lenet_tricks": 4,
    "lr_schedules": 30,
    "densenet_paper": 27,
}


def job(stem: str) -> JobSpec:
    return load_job(ROOT / "jobs" / f"{stem}.toml")


@pytest.mark.parametrize("path", JOB_FILES, ids=[p.stem for p in JOB_FILES])
def test_job_file_validates_and_expands(path: Path) -> None:
    j = load_job(path)
    assert j.trials, path
    if path.stem in COUNTS:
        assert len(j.trials) == COUNTS[path.stem]
    assert len({t.name for t in j.trials}) == len(j.trials)
    assert len({t.key for t in j.trials}) == len(j.trials)
    assert all(len(t.key) == 16 for t in j.trials)
    # Seed tables: once one trial quotes a published number, every trial must.
    if any(t.reference.accuracy is not None for t in j.trials):
        for t in j.trials:
            assert t.reference.accuracy is not None and t.reference.source, t.name
            assert estimate_cost(t) > 0, t.name


def test_every_job_file_through_the_cli() -> None:
    proc = run_orch("validate", *map(str, JOB_FILES))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(JOB_FILES)} files" in proc.stdout


# ---------------------------------------------------------------- jobs/full_table.toml
# The README table: network, params, batch size, epochs, time, accuracy.
README = [
    ("Lecun-Network", "lenet5", 62_000, 128, 200, "30 min", 76.23),
    ("Network-in-Network", "nin", 970_000, 128, 200, "1h40", 91.63),
    ("Vgg19-Network", "vgg19", 39_000_000, 128, 200, "1h53", 93.53),
    ("Residual-Network20", "resnet20", 270_000, 128, 200, "44 min", 91.82),
    ("Residual-Network32", "resnet32", 470_000, 128, 200, "1h07", 92.68),
    # The README's 1.7M for n = 8 is its own typo (763,882 params): kept as published.
    ("Residual-Network50", "resnet50", 1_700_000, 128, 200, "1h42", 93.18),
    ("Residual-Network110", "resnet110", 1_700_000, 128, 200, "3h38", 93.93),
    ("Wide-resnet 16x8", "wrn_16_8", 11_300_000, 128, 200, "4h55", 95.13),
    ("Wide-resnet 28x10", "wrn_28_10", 36_500_000, 128, 200, "10h22", 95.78),
    ("DenseNet-100x12", "densenet_bc_100_12", 850_000, 64, 250, "17h20", 94.91),
    ("DenseNet-100x24", "densenet_bc_100_24", 3_300_000, 64, 250, "22h27", 95.30),
    ("DenseNet-160x24", "densenet_bc_160_24", 7_500_000, 64, 250, "50h20", 95.90),
    ("ResNeXt-4x64d", "resnext29_4x64d", 20_000_000, 120, 250, "21h03", 95.19),
    ("SENet(ResNeXt-4x64d)", "se_resnext29_4x64d", 20_000_000, 120, 250, "21h57", 95.60),
]


def test_full_table_is_the_readme_table_in_order() -> None:
    j = job("full_table")
    got = [
        (
            t.name,
            t.model,
            t.reference.params,
            t.batch_size,
            t.epochs,
            t.reference.time,
            t.reference.accuracy,
        )
        for t in j.trials
    ]
    assert got == README
    for t in j.trials:
        assert (t.reference.batch_size, t.reference.epochs) == (t.batch_size, t.epochs)
        assert t.data.name == "cifar10" and t.recipe.optimizer == "sgd" and t.recipe.nesterov
        assert t.recipe.schedule_dict["kind"] == "step"


def test_full_table_recipes_follow_the_seed_scripts() -> None:
    t = {x.model: x for x in job("full_table").trials}

    def lr(model: str, epoch: int) -> float:
        r = t[model].recipe
        return schedule_from_dict(r.schedule_dict, epochs=t[model].epochs, lr=r.lr).lr_at(epoch)

    # "<" vs "<=" boundaries, as each script wrote them.
    assert (lr("resnet20", 80), lr("resnet20", 81), lr("resnet20", 122)) == (0.1, 0.01, 0.001)
    assert (lr("nin", 80), lr("nin", 81), lr("nin", 141)) == (0.01, 0.005, 0.001)
    assert (lr("lenet5", 99), lr("lenet5", 100)) == (0.01, 0.005)
    assert (lr("vgg19", 79), lr("vgg19", 80), lr("vgg19", 160)) == (0.1, 0.01, 0.001)
    assert [lr("wrn_28_10", e) for e in (59, 60, 120, 160)] == [0.1, 0.02, 0.004, 0.0008]
    assert [lr("densenet_bc_100_12", e) for e in (75, 76, 150, 151, 211)] == [
        0.1,
        0.01,
        0.01,
        0.001,
        0.0005,
    ]
    assert (lr("resnext29_4x64d", 149), lr("resnext29_4x64d", 150)) == (0.1, 0.01)
    # Preprocessing, augmentation and weight decay per script.
    assert t["vgg19"].recipe.preprocess == "vgg_mean"
    for m in ("wrn_16_8", "wrn_28_10"):
        assert t[m].recipe.augment == "standard_reflect" and t[m].recipe.weight_decay == 5e-4
        assert t[m].recipe.preprocess == "meanstd_rounded"
    assert t["resnext29_4x64d"].recipe.preprocess == "meanstd_rounded"
    assert t["se_resnext29_4x64d"].recipe.preprocess == "meanstd"
    assert t["resnext29_4x64d"].recipe.weight_decay == 5e-4
    assert t["resnet110"].recipe.weight_decay == 1e-4
    # The README rows that reflect the seed's code, not the fixed architecture.
    for m in (
        "vgg19",
        "wrn_16_8",
        "densenet_bc_100_12",
        "densenet_bc_100_24",
        "densenet_bc_160_24",
        "resnext29_4x64d",
        "se_resnext29_4x64d",
    ):
        assert t[m].model_kwargs.get("seed_variant") is True, m
    assert "seed_variant" not in t["wrn_28_10"].model_kwargs
    d160 = t["densenet_bc_160_24"]
    assert d160.resources.gpus == 2 and d160.reference.gpu == "GTX 1080 x 2"
    assert d160.model_kwargs["bn_momentum"] == 0.99
    assert all(x.resources.gpus == 1 for m, x in t.items() if m != "densenet_bc_160_24")


# ---------------------------------------------------------------- the other seed tables


def test_lenet_tricks_add_one_trick_per_row() -> None:
    rows = [
        (t.name, t.recipe.preprocess, t.recipe.augment, t.recipe.weight_decay, t.reference.accuracy)
        for t in job("lenet_tricks").trials
    ]
    assert rows == [
        ("LeNet", "scale", "none", 0.0, 58.48),
        ("LeNet +DP", "meanstd", "none", 0.0, 60.41),
        ("LeNet +DP +DA", "meanstd", "standard", 0.0, 75.06),
        ("LeNet +DP +DA +WD", "meanstd", "standard", 1e-4, 76.23),
    ]


def test_lr_schedules_is_3_schedules_x_2_datasets_x_5_seeds() -> None:
    j = job("lr_schedules")
    assert len(j.groups) == 6
    refs = {}
    for group, trials in j.groups.items():
        assert [t.seed for t in trials] == [0, 1, 2, 3, 4]
        assert len({t.reference.accuracy for t in trials}) == 1
        t = trials[0]
        assert t.model == "resnet50" and t.epochs == 200 and t.batch_size == 128
        refs[(t.recipe.schedule_dict["kind"], t.data.name)] = t.reference.accuracy
        assert group == f"ResNet-50-{t.recipe.schedule_dict['kind']}-{t.data.name}"
    assert refs == {
        ("step", "cifar10"): 93.09,
        ("cosine", "cifar10"): 93.42,
        ("htd", "cifar10"): 93.58,
        ("step", "cifar100"): 70.25,
        ("cosine", "cifar100"): 70.07,
        ("htd", "cifar100"): 70.81,
    }
    htd = next(t for t in j.trials if t.recipe.schedule_dict["kind"] == "htd")
    sched = schedule_from_dict(htd.recipe.schedule_dict, epochs=htd.epochs, lr=htd.recipe.lr)
    # htd/README values: e100 0.0953, e150 0.0182, e199 0.00027.
    assert [round(sched.lr_at(e), 4) for e in (0, 100, 150)] == [0.1, 0.0953, 0.0182]


# Table 2 of the DenseNet paper: error (%) per column; None = "-" (no result published).
DENSENET_TABLE2 = {
    "densenet_40_12": {"C10": 7.00, "C10+": 5.24, "C100": 27.55, "C100+": 24.42, "SVHN": 1.79},
    "densenet_100_12": {"C10": 5.77, "C10+": 4.10, "C100": 23.79, "C100+": 20.20, "SVHN": 1.67},
    "densenet_100_24": {"C10": 5.83, "C10+": 3.74, "C100": 23.42, "C100+": 19.25, "SVHN": 1.59},
    "densenet_bc_100_12": {
        "C10": 5.92,
        "C10+": 4.51,
        "C100": 24.15,
        "C100+": 22.27,
        "SVHN": 1.76,
    },
    "densenet_bc_250_24": {
        "C10": 5.19,
        "C10+": 3.62,
        "C100": 19.64,
        "C100+": 17.60,
        "SVHN": 1.74,
    },
    "densenet_bc_190_40": {"C10": None, "C10+": 3.46, "C100": None, "C100+": 17.18, "SVHN": None},
}


def _column(t) -> str:  # type: ignore[no-untyped-def]
    if t.data.name == "svhn_extra":
        return "SVHN"
    base = "C10" if t.data.name == "cifar10" else "C100"
    return base + ("+" if t.recipe.augment != "none" else "")


def test_densenet_paper_has_every_published_cell_with_its_column_recipe() -> None:
    j = job("densenet_paper")
    got = {(t.model, _column(t)): t for t in j.trials}
    want = {(m, c): e for m, cols in DENSENET_TABLE2.items() for c, e in cols.items() if e}
    assert set(got) == set(want) and len(j.trials) == len(want)
    for (model, col), t in got.items():
        r = t.recipe
        assert t.reference.error == want[(model, col)], (model, col)
        assert round(t.reference.accuracy, 2) == round(100 - want[(model, col)], 2)
        assert col in t.reference.source and col in t.name
        assert (t.batch_size, r.lr, r.momentum, r.nesterov, r.weight_decay) == (
            64,
            0.1,
            0.9,
            True,
            1e-4,
        )
        augmented = col.endswith("+")
        # Dropout 0.2 exactly where the paper trains without augmentation.
        assert t.model_kwargs.get("dropout", 0.0) == (0.0 if augmented else 0.2), t.name
        assert r.augment == ("padcrop" if augmented else "none")
        if col == "SVHN":
            svhn = (t.epochs, r.schedule_dict["boundaries"], r.preprocess)
            assert svhn == (40, [20, 30], "scale")
            assert t.data.validation_size == 6000 and t.reference.epochs == 40
        else:
            assert (t.epochs, r.schedule_dict["boundaries"], r.preprocess) == (
                300,
                [150, 225],  # 50% and 75% of 300
                "meanstd",
            )
            assert t.data.name == ("cifar100" if "100" in col else "cifar10")


# ---------------------------------------------------------------- docs/job_files.md
DOC = ROOT / "docs" / "job_files.md"
# Every complete example (a ```toml block starting with [job]) and its number of trials.
DOC_EXAMPLES = {
    "my_job": 3,
    "two_trials": 2,
    "axes_demo": 4,
    "zip_demo": 4,
    "per_model_demo": 2,
    "exclude_demo": 3,
    "seeds_demo": 4,
    "cluster_demo": 2,
}


def test_the_guides_examples_are_valid_job_files(tmp_path: Path) -> None:
    import re

    blocks = re.findall(r"```toml\n(\[job\]\n.*?)```", DOC.read_text(), re.DOTALL)
    counts = {}
    for i, text in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(text)
        j = load_job(path)
        counts[j.name] = len(j.trials)
    assert counts == DOC_EXAMPLES
