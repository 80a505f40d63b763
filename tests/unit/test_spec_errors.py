"""The error corpus: each bad job file gives exactly these messages, naming the file, the
trial or grid block and the key path, with "did you mean" and "Received:" where they help."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec.load import load_job

HEAD = """
[job]
name = "e"
[defaults]
dataset = "digits"
epochs = 2
"""
CLUSTER = """
[[cluster.node_type]]
name = "box"
gpu_type = "GTX 1080 Ti"
gpus = 2
cpus = 8
memory_gb = 32
[[cluster.node_type]]
name = "wide"
gpu_type = "RTX 3090"
gpus = 1
cpus = 64
memory_gb = 16
[[cluster.node_type]]
name = "cpu"
cpus = 96
"""
LENET = '[[trial]]\nmodel = "lenet5"\n'
GRID = '[[grid]]\n[grid.axes]\nmodel = ["lenet5"]\n'

CORPUS: list[tuple[str, str, list[str]]] = [
    # ---- grids
    (
        "axis key typo",
        '[[grid]]\n[grid.axes]\nmodle = ["lenet5"]\n',
        ["grid #1: axes: modle: unknown key. Did you mean: model?"],
    ),
    (
        "nested axis key typo",
        '[[grid]]\nmodel = "lenet5"\n[grid.axes]\n"recipe.lrr" = [0.1]\n',
        ["grid #1: axes: recipe.lrr: unknown key. Did you mean: lr?"],
    ),
    (
        "axis not an array",
        '[[grid]]\n[grid.axes]\nmodel = "lenet5"\n',
        ["grid #1: axes.model: must be a non-empty array of values. Received: model='lenet5'"],
    ),
    (
        "bad axis values, all reported",
        '[[grid]]\n[grid.axes]\nmodel = ["lenet5", "resnet21"]\n"recipe.lr" = [0.1, -1]\n',
        [
            "grid #1: axes: model: unknown model. Did you mean: resnet32, resnet20, resnet? "
            "Received: model='resnet21'",
            "grid #1: axes: recipe.lr: must be > 0. Received: lr=-1",
        ],
    ),
    (
        "zip lengths",
        '[[grid]]\n[grid.zip]\nmodel = ["lenet5", "resnet20"]\n"recipe.lr" = [0.1]\n',
        ["grid #1: zip: zipped lists must have the same length. Received: model: 2, recipe.lr: 1"],
    ),
    (
        "seed as an axis",
        '[[grid]]\n[grid.axes]\nseed = [1, 2]\nmodel = ["lenet5"]\n',
        ["grid #1: axes.seed: seed cannot be an axis; use seeds = [...] or repeats = N."],
    ),
    (
        "a key varied twice",
        '[[grid]]\n[grid.axes]\nmodel = ["lenet5"]\nrecipe = [{lr = 0.1}]\n"recipe.lr" = [0.2]\n',
        ["grid #1: 'recipe' and 'recipe.lr' are both varied; vary a key in one place only."],
    ),
    (
        "exclude key typo",
        '[[grid]]\nexclude = [{modle = "lenet5"}]\n[grid.axes]\nmodel = ["lenet5"]\n',
        ["grid #1: exclude[0]: modle: unknown key. Did you mean: model?"],
    ),
    (
        "exclude matching nothing",
        '[[grid]]\nexclude = [{model = "resnet20"}]\n[grid.axes]\nmodel = ["lenet5", "resnet32"]\n',
        [
            "grid #1: exclude[0]: matches no trial of this grid; check its keys and values. "
            "Received: {'model': 'resnet20'}"
        ],
    ),
    (
        "exclude everything",
        '[[grid]]\nexclude = [{model = "lenet5"}]\n[grid.axes]\nmodel = ["lenet5"]\n',
        ["grid #1: exclude: removes every trial of this grid."],
    ),
    (
        "per_model for a model not in the grid",
        '[[grid]]\n[grid.axes]\nmodel = ["resnet110"]\n[grid.per_model.resnet101]\nepochs = 3\n',
        [
            "grid #1: per_model.resnet101: no trial of this grid has model 'resnet101'. "
            "Did you mean: resnet110?"
        ],
    ),
    (
        "per_model key typo",
        '[[grid]]\n[grid.axes]\nmodel = ["resnet110"]\n[grid.per_model.resnet110]\nepoch = 3\n',
        ["grid #1: per_model.resnet110: epoch: unknown key. Did you mean: epochs?"],
    ),
    (
        "name template field typo",
        '[[grid]]\nname = "{modle}-{dataset}"\n[grid.axes]\nmodel = ["lenet5"]\n',
        [
            'grid #1 "{modle}-{dataset}": name: {modle} is no key of the trial. '
            "Did you mean: model? Received: name='{modle}-{dataset}'"
        ],
    ),
    (
        "name template with the seed",
        '[[grid]]\nname = "{model}-{seed}"\n[grid.axes]\nmodel = ["lenet5"]\n',
        ["name: {seed}: the seed is appended as -s<seed> when seeds or repeats is set."],
    ),
    (
        "name template naming a table",
        '[[grid]]\nname = "{recipe}"\n' + GRID[9:],
        ["name: {recipe} is not a single value; name a key inside it."],
    ),
    (
        "unmatched brace",
        '[[grid]]\nname = "{model"\n' + GRID[9:],
        ["name: unmatched '{'; write {{ for a literal brace."],
    ),
    (
        "names that collide",
        '[[grid]]\nname = "x"\n[grid.axes]\nmodel = ["lenet5", "resnet20"]\n',
        ['grid #1 "x": trial "x": name "x" is used by more than one trial. Names must be unique'],
    ),
    # ---- seeds
    (
        "seeds and repeats",
        LENET + "seeds = [0, 1]\nrepeats = 2\n",
        [
            'trial "lenet5": repeats: set only one of seed (one trial), seeds (a list) or repeats '
            "(seeds 0..R-1). Received: seeds=[0, 1], repeats=2"
        ],
    ),
    (
        "a seed twice",
        LENET + "seeds = [0, 0]\n",
        ['trial "lenet5": seeds: must not repeat a seed. Received: seeds=[0, 0]'],
    ),
    (
        "too many trials",
        LENET + "repeats = 100000\n",
        ["expands to 100000 trials, more than 10000; check axes, seeds and repeats."],
    ),
    # ---- resources, references, recipes
    (
        "fractional GPUs above one",
        LENET + "resources = { gpus = 1.5 }\n",
        [
            'trial "lenet5": resources.gpus: more than one GPU must be a whole number (a fraction '
            "shares ONE GPU between trials). Received: gpus=1.5"
        ],
    ),
    (
        "any among other types",
        LENET + 'resources = { gpus = 1, gpu_type = ["any", "A100"] }\n',
        [
            'resources.gpu_type: "any" accepts every type; give it alone or list the acceptable '
            "types. Received: gpu_type=['any', 'A100']"
        ],
    ),
    (
        "accuracy and error disagree",
        LENET + "reference = { accuracy = 90, error = 5 }\n",
        [
            "reference: accuracy and error must add up to 100 (give one of them). "
            "Received: accuracy=90, error=5"
        ],
    ),
    (
        "weight decay in model_args",
        LENET + "model_args = { weight_decay = 0.1 }\n",
        ["model_args.weight_decay: set recipe.weight_decay instead"],
    ),
    (
        "reserved model argument",
        LENET + "model_args = { num_classes = 100 }\n",
        [
            "model_args.num_classes: comes from the dataset; not a model argument. "
            "Received: num_classes=100"
        ],
    ),
    (
        "unknown schedule",
        LENET + 'recipe = { schedule = { kind = "stepp" } }\n',
        [
            'trial "lenet5": recipe.schedule: kind: must be one of constant, step, cosine, htd, '
            "plateau; Received: kind='stepp'. Did you mean: step?"
        ],
    ),
    (
        "schedule values",
        LENET + 'recipe = { schedule = { kind = "step", boundaries = [5], values = [0.1] } }\n',
        [
            "recipe.schedule: values: must be 2 learning rates > 0, one more than the boundaries. "
            "Received: values=[0.1]"
        ],
    ),
    (
        "unknown dataset",
        LENET + 'dataset = "cifar11"\n',
        [
            'trial "lenet5": dataset: unknown dataset. Did you mean: cifar10, cifar100? '
            "Received: dataset='cifar11'"
        ],
    ),
    (
        "unknown optimizer",
        LENET + 'recipe = { optimizer = "sgdd" }\n',
        ["recipe.optimizer: unknown optimizer. Did you mean: sgd? Received: optimizer='sgdd'"],
    ),
    (
        "validation fraction",
        LENET + "data = { validation_size = 1.5 }\n",
        [
            "data.validation_size: a fraction must lie in [0, 1); write a count as a whole number. "
            "Received: validation_size=1.5"
        ],
    ),
    (
        "zoo argument",
        '[[trial]]\nmodel = "resnet"\nmodel_args = { depth = 21 }\n',
        ['trial "resnet": model_args: resnet: depth: must be 6n+2'],
    ),
    (
        "top-level typo",
        '[[trials]]\nmodel = "lenet5"\n',
        ["trials: unknown key. Did you mean: trial?"],
    ),
    ("no trials", "", ["no trials: add at least one [[trial]] or [[grid]] with a model."]),
    (
        "integer beyond 64 bits",
        LENET + "batch_size = 99999999999999999999\n",
        ["trial[0].batch_size: integers must fit in 64 bits. Received: 99999999999999999999"],
    ),
    (
        "seeding twice in defaults",
        "seed = 1\nrepeats = 2\n" + LENET,
        ["defaults.repeats: set only one of seed"],
    ),
]

CLUSTER_CORPUS: list[tuple[str, str, list[str]]] = [
    (
        "more GPUs than any node",
        LENET + "resources = { gpus = 4 }\n",
        [
            'trial "lenet5": resources.gpus: asks for 4 but the largest node type with GPUs in '
            "[cluster] has 2. Received: gpus=4"
        ],
    ),
    (
        "GPU type typo",
        LENET + 'resources = { gpus = 1, gpu_type = "GTX 1080Ti" }\n',
        [
            "resources.gpu_type: no node type in [cluster] has GPU type 'GTX 1080Ti'. "
            "Did you mean: GTX 1080 Ti? Received: gpu_type='GTX 1080Ti'"
        ],
    ),
    (
        "more CPUs than nodes of the acceptable type",
        LENET + 'resources = { gpus = 1, cpus = 16, gpu_type = "GTX 1080 Ti" }\n',
        [
            "resources.cpus: asks for 16 but the largest node type of an acceptable GPU type in "
            "[cluster] has 8. Received: cpus=16"
        ],
    ),
    (
        "more memory than any GPU node",
        LENET + "resources = { gpus = 1, memory_gb = 64 }\n",
        [
            "resources.memory_gb: asks for 64 but the largest node type with GPUs in [cluster] "
            "has 32. Received: memory_gb=64"
        ],
    ),
    (
        "no single node has it all",
        LENET + "resources = { gpus = 1, cpus = 16, memory_gb = 32 }\n",
        [
            "resources: no single node type with GPUs in [cluster] has all of gpus=1, cpus=16, "
            "memory_gb=32 (one trial runs on one node)."
        ],
    ),
    (
        "a GPU type on a node without GPUs",
        '[[cluster.node_type]]\nname = "y"\ngpu_type = "A100"\ncpus = 3\n' + LENET,
        [
            'cluster.node_type "y": gpu_type: a node type without GPUs has no GPU type; set gpus '
            "or remove gpu_type. Received: gpu_type='A100', gpus=0"
        ],
    ),
    (
        "bad node type",
        '[[cluster.node_type]]\nname = "x"\ngpus = -1\ncpu = 3\n' + LENET,
        [
            'cluster.node_type "x": gpus: must be >= 0. Received: gpus=-1',
            'cluster.node_type "x": cpu: unknown key. Did you mean: cpus?',
            'cluster.node_type "x": cpus: missing. Every node type needs one.',
        ],
    ),
    (
        "a node type named twice",
        '[[cluster.node_type]]\nname = "box"\ncpus = 3\n' + LENET,
        ['cluster.node_type "box": name used twice; names must be unique.'],
    ),
]


def load(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecError) as e:
        load_job(path)
    return e.value.problems


@pytest.mark.parametrize("label, body, expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_error_corpus(tmp_path: Path, label: str, body: str, expected: list[str]) -> None:
    got = load(tmp_path, HEAD + body)
    assert len(got) == len(expected), got
    for msg, want in zip(got, expected, strict=True):
        assert msg.startswith(f"{tmp_path / 'bad.toml'}: "), msg
        assert want in msg, f"{want!r} not in {msg!r}"


@pytest.mark.parametrize(
    "label, body, expected", CLUSTER_CORPUS, ids=[c[0] for c in CLUSTER_CORPUS]
)
def test_cluster_contradictions(tmp_path: Path, label: str, body: str, expected: list[str]) -> None:
    got = load(tmp_path, HEAD + CLUSTER + body)
    assert len(got) == len(expected), got
    for msg, want in zip(got, expected, strict=True):
        assert want in msg, f"{want!r} not in {msg!r}"


@pytest.mark.parametrize(
    "resources",
    [
        "{ cpus = 90 }",  # the CPU node
        "{ gpus = 2, cpus = 8, memory_gb = 32 }",  # exactly the box
        '{ gpus = 1, cpus = 60, gpu_type = ["GTX 1080 Ti", "RTX 3090"] }',  # the wide node
        '{ gpus = 0.5, gpu_type = "any" }',
        '{ gpus = 1, cpus = 60, gpu_type = "rtx-3090" }',  # the scheduler's slug of the type
    ],
)
def test_requests_that_fit_the_cluster(tmp_path: Path, resources: str) -> None:
    path = tmp_path / "ok.toml"
    path.write_text(HEAD + CLUSTER + LENET + f"resources = {resources}\n")
    assert len(load_job(path).trials) == 1


def test_every_problem_in_the_file_is_reported_together(tmp_path: Path) -> None:
    text = (
        HEAD
        + CLUSTER
        + """
[[trial]]
name = "a"
model = "lenet6"
[[trial]]
name = "b"
model = "lenet5"
resources = { gpus = 3 }
[[grid]]
[grid.axes]
model = ["resnet20"]
"recipe.lr" = [0]
[[grid]]
name = "{model}"
seeds = [1, 1]
[grid.axes]
model = ["resnet20"]
"""
    )
    got = load(tmp_path, text)
    assert len(got) == 4, got
    for want in (
        'trial "a": model: unknown model',
        'trial "b": resources.gpus: asks for 3',
        "grid #1: axes: recipe.lr: must be > 0",
        'grid #2 "{model}": seeds: must not repeat a seed',
    ):
        assert sum(want in m for m in got) == 1, (want, got)


def test_a_gpu_type_accepts_its_detailed_variants(tmp_path: Path) -> None:
    """As the scheduler matches labels: "A100" accepts a node type "A100-SXM4-80GB"."""
    path = tmp_path / "ok.toml"
    cluster = '[[cluster.node_type]]\nname = "dgx"\ngpu_type = "NVIDIA A100-SXM4-80GB"\n'
    path.write_text(
        HEAD
        + cluster
        + "gpus = 8\ncpus = 128\n"
        + LENET
        + 'resources = { gpus = 8, gpu_type = "A100" }\n'
    )
    assert load_job(path).trials[0].resources.gpu_type == ("A100",)
