"""Grid algebra: golden expansions (exact names, order, keys), zip, exclude, per-model
blocks, seeds, inheritance defaults -> grid -> per_model, name templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec.load import load_job, parse_job
from orchestrator.spec.model import JobSpec

HEAD = """
[job]
name = "g"
[defaults]
dataset = "digits"
epochs = 2
batch_size = 32
recipe = { lr = 0.1, schedule = { kind = "step", boundaries = [1], values = [0.1, 0.01] } }
"""


def job(tmp_path: Path, body: str, head: str = HEAD) -> JobSpec:
    p = tmp_path / "g.toml"
    p.write_text(head + body)
    return load_job(p)


def problems(tmp_path: Path, body: str, head: str = HEAD) -> list[str]:
    with pytest.raises(SpecError) as e:
        job(tmp_path, body, head)
    return e.value.problems


GOLDEN = """
[[grid]]
name = "{model}-lr{recipe.lr}"
seeds = [0, 1]
[grid.axes]
model = ["resnet20", "lenet5"]
"recipe.lr" = [0.1, 0.05]
"""


def test_golden_product_names_order_groups_seeds_and_keys(tmp_path: Path) -> None:
    j = job(tmp_path, GOLDEN)
    assert [t.name for t in j.trials] == [
        "resnet20-lr0.1-s0",
        "resnet20-lr0.1-s1",
        "resnet20-lr0.05-s0",
        "resnet20-lr0.05-s1",
        "lenet5-lr0.1-s0",
        "lenet5-lr0.1-s1",
        "lenet5-lr0.05-s0",
        "lenet5-lr0.05-s1",
    ]  # first axis slowest, seeds innermost
    assert [t.group for t in j.trials[::2]] == [
        "resnet20-lr0.1",
        "resnet20-lr0.05",
        "lenet5-lr0.1",
        "lenet5-lr0.05",
    ]
    assert [t.seed for t in j.trials] == [0, 1] * 4
    assert [t.recipe.lr for t in j.trials[::2]] == [0.1, 0.05, 0.1, 0.05]
    assert list(j.groups) == [t.group for t in j.trials[::2]]
    assert all(len(ts) == 2 for ts in j.groups.values())
    # Content keys are a contract with the ledger: the same file gives the same keys
    # forever (bump KEY_VERSION when their meaning changes).
    assert j.trials[0].key == "656f2df1a1fd9118"
    assert j.trials[7].key == "ff3f48cd898d7986"
    assert len({t.key for t in j.trials}) == 8
    assert [t.key for t in job(tmp_path, GOLDEN).trials] == [t.key for t in j.trials]


def test_key_is_independent_of_how_the_trial_was_written(tmp_path: Path) -> None:
    grid = job(tmp_path, GOLDEN).trials[2]  # resnet20, lr 0.05, seed 0
    explicit = job(
        tmp_path,
        """
[[trial]]
name = "anything"
model = "resnet20"
seed = 0
recipe = { lr = 0.05 }
""",
    ).trials[0]
    assert explicit.key == grid.key and explicit.name != grid.name
    assert explicit.group == explicit.name == "anything"  # no seeds axis: its own group


def test_zip_advances_lists_together_inside_the_product(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[grid]]
name = "{dataset}-{recipe.schedule.kind}"
[grid.axes]
dataset = ["digits", "synthetic"]
[grid.zip]
"recipe.schedule" = [{ kind = "cosine" }, { kind = "htd" }]
"reference.accuracy" = [90.5, 91.5]
model = ["resnet20", "lenet5"]
""",
    )
    got = [(t.name, t.model, t.reference.accuracy) for t in j.trials]
    assert got == [
        ("digits-cosine", "resnet20", 90.5),
        ("digits-htd", "lenet5", 91.5),
        ("synthetic-cosine", "resnet20", 90.5),
        ("synthetic-htd", "lenet5", 91.5),
    ]
    # The zipped schedule replaces the inherited step schedule whole (no stray boundaries).
    assert j.trials[0].recipe.schedule_dict == {"kind": "cosine"}


def test_several_zip_groups_are_separate_dimensions(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[grid]]
name = "{model}-{recipe.lr}-{batch_size}"
model = "lenet5"
[[grid.zip]]
"recipe.lr" = [0.1, 0.2]
[[grid.zip]]
batch_size = [16, 32]
"recipe.momentum" = [0.5, 0.6]
""",
    )
    assert [t.name for t in j.trials] == [
        "lenet5-0.1-16",
        "lenet5-0.1-32",
        "lenet5-0.2-16",
        "lenet5-0.2-32",
    ]
    assert [t.recipe.momentum for t in j.trials] == [0.5, 0.6, 0.5, 0.6]


def test_name_zipped_with_the_model(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[grid]]
[grid.zip]
model = ["resnet20", "lenet5"]
name = ["ResNet-20 on {dataset}", "LeNet"]
""",
    )
    assert [t.name for t in j.trials] == ["ResNet-20 on digits", "LeNet"]


def test_exclude_drops_matching_cells(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[grid]]
name = "{model}-{dataset}-{recipe.lr}"
exclude = [{ model = "lenet5", dataset = "synthetic" }, { "recipe.lr" = 0.05, model = "resnet20" }]
[grid.axes]
model = ["resnet20", "lenet5"]
dataset = ["digits", "synthetic"]
"recipe.lr" = [0.1, 0.05]
""",
    )
    assert [t.name for t in j.trials] == [
        "resnet20-digits-0.1",
        "resnet20-synthetic-0.1",
        "lenet5-digits-0.1",
        "lenet5-digits-0.05",
    ]


def test_per_model_blocks_apply_to_their_model_only(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[grid]]
recipe = { momentum = 0.8 }
[grid.axes]
model = ["resnet20", "lenet5"]
[grid.per_model.lenet5]
name = "LeNet-5"
epochs = 5
recipe = { lr = 0.01 }
model_args = { kernel_initializer = "glorot_uniform" }
""",
    )
    r20, lenet = j.trials
    assert (r20.name, r20.epochs, r20.recipe.lr, r20.model_kwargs) == ("resnet20", 2, 0.1, {})
    assert (lenet.name, lenet.epochs, lenet.recipe.lr) == ("LeNet-5", 5, 0.01)
    assert lenet.model_kwargs == {"kernel_initializer": "glorot_uniform"}
    # Tables merge key by key through every level: defaults -> grid -> per_model.
    assert lenet.recipe.momentum == r20.recipe.momentum == 0.8
    assert lenet.recipe.schedule_dict["kind"] == "step"


def test_inheritance_job_defaults_grid_trial(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[trial]]
name = "plain"
model = "lenet5"
[[trial]]
name = "deeper"
model = "lenet5"
recipe = { nesterov = false, schedule = { kind = "cosine" } }
[[grid]]
name = "g-{model}"
epochs = 4
recipe = { momentum = 0.5 }
resources = { cpus = 2 }
[grid.axes]
model = ["lenet5"]
""",
    )
    plain, deeper, grid = j.trials
    assert plain.recipe.lr == deeper.recipe.lr == grid.recipe.lr == 0.1  # from [defaults]
    assert deeper.recipe.nesterov is False and deeper.recipe.schedule_dict == {"kind": "cosine"}
    assert plain.recipe.schedule_dict["kind"] == "step"
    assert (grid.epochs, grid.recipe.momentum, grid.resources.cpus) == (4, 0.5, 2)
    assert grid.batch_size == 32


def test_trials_and_grids_keep_file_order(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[trial]]
name = "first"
model = "lenet5"
[[grid]]
name = "second-{model}"
epochs = 3
[grid.axes]
model = ["lenet5"]
[[trial]]
name = "third"
model = "resnet20"
""",
    )
    assert [t.name for t in j.trials] == ["first", "second-lenet5", "third"]
    # parse_job without the text: trials first, then grids.
    import tomllib

    raw = tomllib.loads((tmp_path / "g.toml").read_text())
    assert [t.name for t in parse_job(raw, "g").trials] == ["first", "third", "second-lenet5"]


@pytest.mark.parametrize(
    "seeding, names",
    [
        ("repeats = 3", ["x-s0", "x-s1", "x-s2"]),
        ("seeds = [7, 3]", ["x-s7", "x-s3"]),
        ("seed = 5", ["x"]),
    ],
)
def test_seeds_axis(tmp_path: Path, seeding: str, names: list[str]) -> None:
    j = job(tmp_path, f'[[trial]]\nname = "x"\nmodel = "lenet5"\n{seeding}\n')
    assert [t.name for t in j.trials] == names
    assert {t.group for t in j.trials} == {"x"}


def test_a_more_specific_level_replaces_the_seeding(tmp_path: Path) -> None:
    head = HEAD + "seeds = [0, 1, 2]\n"
    j = job(
        tmp_path,
        """
[[trial]]
name = "inherits"
model = "lenet5"
[[trial]]
name = "once"
model = "resnet20"
seed = 9
[[grid]]
repeats = 2
[grid.axes]
model = ["lenet5", "resnet20"]
recipe = [{ lr = 0.3 }]
[grid.per_model.resnet20]
seed = 4
""",
        head=head,
    )
    assert [(t.name, t.seed) for t in j.trials] == [
        ("inherits-s0", 0),
        ("inherits-s1", 1),
        ("inherits-s2", 2),
        ("once", 9),
        ("lenet5-s0", 0),
        ("lenet5-s1", 1),
        ("resnet20", 4),
    ]


def test_name_template_braces_and_defaults(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[trial]]
name = "{{{model}}} bs{batch_size} {recipe.optimizer} aug={recipe.augment} {recipe.nesterov}"
model = "lenet5"
""",
    )
    assert j.trials[0].name == "{lenet5} bs32 sgd aug=standard true"


def test_default_template_uses_scalar_axes(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[grid]]
[grid.axes]
dataset = ["digits", "synthetic"]
model = ["lenet5"]
"recipe.schedule" = [{ kind = "cosine" }]
""",
    )
    assert [t.name for t in j.trials] == ["digits-lenet5", "synthetic-lenet5"]


def test_gpu_type_any_list_and_reference_error(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[trial]]
name = "a"
model = "lenet5"
resources = { gpus = 0.5, gpu_type = "any" }
reference = { error = 5.24, params = 1000 }
[[trial]]
name = "b"
model = "resnet20"
resources = { gpus = 2, gpu_type = ["RTX 3090", "GTX 1080 Ti"] }
""",
    )
    a, b = j.trials
    assert a.resources.gpu_type == () and a.resources.gpus == 0.5
    assert a.reference.accuracy == pytest.approx(94.76) and a.reference.error == 5.24
    assert b.resources.gpu_type == ("RTX 3090", "GTX 1080 Ti")


def test_cluster_section_becomes_node_types(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[cluster.node_type]]
name = "1080ti-box"
gpu_type = "GTX 1080 Ti"
gpus = 4
cpus = 32
memory_gb = 128
count = 2
[[cluster.node_type]]
name = "cpu"
cpus = 8
[[trial]]
model = "lenet5"
resources = { gpus = 4, cpus = 16, gpu_type = "GTX 1080 Ti" }
""",
    )
    box, cpu = j.cluster
    assert (box.name, box.gpu_type, box.gpus, box.cpus, box.memory_gb, box.count) == (
        "1080ti-box",
        "GTX 1080 Ti",
        4,
        32,
        128,
        2,
    )
    assert (cpu.gpus, cpu.gpu_type, cpu.count) == (0, None, 1)


def test_trial_count_is_known_before_anything_runs(tmp_path: Path) -> None:
    j = job(
        tmp_path,
        """
[[grid]]
repeats = 5
[grid.axes]
model = ["lenet5", "resnet20", "resnet32"]
dataset = ["digits", "synthetic", "synthetic100"]
""",
    )
    assert len(j.trials) == 45 and len(j.groups) == 9
