"""The zoo registry without TensorFlow: names, suggestions, argument checks, constants."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import FrozenInstanceError

import pytest

from orchestrator.errors import SpecError, UnknownModelError
from orchestrator.zoo import (
    Cost,
    check_model,
    create_model,
    estimate_cost,
    family_arguments,
    get_preset,
    list_families,
    list_models,
    resolve_model,
)
from orchestrator.zoo.base import parse_label, published_tolerance, smallest_input

PRESET_NAMES = [
    "lenet5", "nin", "nin_bn", "vgg19", "resnet20", "resnet32", "resnet44", "resnet50",
    "resnet56", "resnet110", "wrn_16_8", "wrn_28_10", "resnext29_4x64d", "resnext29_8x64d",
    "resnext29_16x64d", "se_resnext29_4x64d", "densenet_40_12", "densenet_100_12",
    "densenet_100_24", "densenet_bc_100_12", "densenet_bc_100_24", "densenet_bc_160_24",
    "densenet_bc_250_24", "densenet_bc_190_40", "densenet121", "densenet161", "densenet169",
    "densenet201",
]  # fmt: skip
IMAGENET = {"densenet121", "densenet161", "densenet169", "densenet201"}


def test_every_seed_architecture_is_registered() -> None:
    assert list_models() == sorted(PRESET_NAMES)
    assert list_families() == sorted(
        ["densenet", "lenet", "nin", "resnet", "resnext", "se_resnext", "vgg", "wrn"]
    )


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("resnet*", ["resnet110", "resnet20", "resnet32", "resnet44", "resnet50", "resnet56"]),
        ("*resnext*", ["resnext29_16x64d", "resnext29_4x64d", "resnext29_8x64d",
                       "se_resnext29_4x64d"]),
        ("densenet[12]??", ["densenet121", "densenet161", "densenet169", "densenet201"]),
        ("wrn_[0-9]*", ["wrn_16_8", "wrn_28_10"]),
        ("VGG*", ["vgg19"]),
        ("nothing*", []),
    ],
)  # fmt: skip
def test_list_models_pattern(pattern: str, expected: list[str]) -> None:
    assert list_models(pattern) == expected


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(UnknownModelError) as err:
        get_preset("resnet21")
    assert "unknown model 'resnet21'" in str(err.value)
    assert "Did you mean:" in str(err.value) and "resnet20" in str(err.value)
    with pytest.raises(UnknownModelError, match="densenet_bc_100_12"):
        create_model("densenet_bc100_12")
    with pytest.raises(KeyError):  # UnknownModelError is a KeyError too
        get_preset("alexnet")


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_preset_record(name: str) -> None:
    info = get_preset(name)
    assert info.name == name
    assert info.params > 0 and info.macs > 0
    assert info.family in list_families()
    assert set(info.kwargs) <= set(family_arguments(info.family))
    if name in IMAGENET:
        assert (info.default_input_shape, info.default_num_classes) == ((224, 224, 3), 1000)
    else:
        assert (info.default_input_shape, info.default_num_classes) == ((32, 32, 3), 10)
    # Each preset resolves without a problem (pure: builds nothing).
    assert check_model(name) == []
    assert resolve_model(name).input_shape == info.default_input_shape


@pytest.mark.parametrize("name", [n for n in PRESET_NAMES if get_preset(n).published_label])
def test_stored_params_agree_with_published(name: str) -> None:
    info = get_preset(name)
    assert info.published_label is not None and info.published_source
    published = parse_label(info.published_label)  # ModelInfo.published_params reads it so
    error = abs(info.params - published) / published
    assert error <= published_tolerance(info.published_label)


def test_exact_recomputed_counts_from_the_reference() -> None:
    expected = {
        "lenet5": 62_006, "nin": 966_986, "nin_bn": 972_658, "resnet20": 274_442,
        "resnet32": 470_218, "resnet50": 763_882, "resnet110": 1_742_762,
        "wrn_16_8": 10_968_560, "wrn_28_10": 36_497_136, "resnext29_4x64d": 17_598_400,
        "resnext29_8x64d": 34_484_160, "se_resnext29_4x64d": 18_114_506,
        "densenet_bc_100_12": 793_150, "densenet_bc_100_24": 3_068_482,
        "densenet121": 8_062_504, "densenet169": 14_307_880, "densenet201": 20_242_984,
    }  # fmt: skip
    # Computed from the architecture (the counting walk), not the stored constants: a
    # comparison with those would only compare the registry with a copy of itself.
    assert {name: estimate_cost(name).params for name in expected} == expected


def test_tolerance_follows_the_printed_precision() -> None:
    assert parse_label("62k") == 62_000
    assert parse_label("1.7M") == 1_700_000
    assert published_tolerance("36.5M") == 0.02
    assert published_tolerance("1.7M") == pytest.approx(0.05 / 1.7)
    assert published_tolerance("1.0M") == pytest.approx(0.05)


def test_model_info_is_frozen_and_picklable() -> None:
    info = get_preset("resnet20")
    with pytest.raises(FrozenInstanceError):
        info.params = 1  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(info)) == info


def test_registry_and_cli_import_no_tensorflow() -> None:
    code = (
        "import sys\n"
        "from orchestrator.zoo import list_models, get_preset, check_model\n"
        "from orchestrator.cli.models import models_table\n"
        "[get_preset(n).macs for n in list_models()]\n"
        "check_model('densenet', depth=41)\n"
        "models_table('*')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_cli_models_table() -> None:
    import typer
    from typer.testing import CliRunner

    from orchestrator.cli.models import models

    app = typer.Typer()
    app.command()(models)
    result = CliRunner().invoke(app, ["resnet*"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "resnet110" in result.output and "1,742,762" in result.output
    assert "densenet" not in result.output.split("Families")[0]
    missing = CliRunner().invoke(app, ["resnet21"])
    assert isinstance(missing.exception, UnknownModelError)
    message = str(missing.exception)
    assert message.startswith("no preset matches 'resnet21'. Did you mean:")
    assert "resnet20" in message


# ------------------------------------------------------------------ argument problems


def _problems(name: str, **kwargs: object) -> str:
    with pytest.raises(SpecError) as err:
        resolve_model(name, **kwargs)  # type: ignore[arg-type]
    return str(err.value)


@pytest.mark.parametrize(
    ("name", "kwargs", "expected"),
    [
        ("resnet", {"depth": 21}, "resnet: depth: must be 6n+2"),
        ("resnet", {"depth": 21}, "Received: depth=21"),
        ("wrn", {"depth": 27}, "wrn: depth: must be 6n+4"),
        ("resnext", {"depth": 30}, "resnext: depth: must be 9n+2"),
        ("densenet", {"depth": 41}, "densenet: depth: must be 3n+4"),
        ("densenet", {"depth": 40, "bottleneck": True, "growth_rate": 12}, None),
        ("densenet", {"depth": 43, "bottleneck": True}, "must be 6n+4 for a bottleneck"),
        ("densenet", {"compression": 1.5}, "compression: must be a number in [0.0, 1.0]"),
        ("densenet", {"compression": 0}, "compression: must be in (0, 1]"),
        ("densenet", {"stem": "tiny"}, "stem: must be 'cifar' or 'imagenet'"),
        ("densenet121", {"seed_variant": True}, "seed_variant: only applies to the CIFAR"),
        ("densenet", {"layers_per_block": [6, 12, 24, 16], "stem": "imagenet", "bottleneck": True,
                      "depth": 120}, "must match layers_per_block, which implies depth=121"),
        ("densenet", {"layers_per_block": [6, 0]}, "layers_per_block: must be an integer >= 1"),
        ("vgg", {"depth": 17}, "vgg: depth: must be one of [11, 13, 16, 19]"),
        ("resnet20", {"dropout": 0.5}, "resnet20: dropout: unknown argument."),
        ("resnet20", {"dpeth": 3}, "Did you mean: depth?"),
        ("resnet20", {"depth": 32}, "resnet20: depth: is fixed by the preset (depth=20)"),
        ("resnet20", {"weight_decay": -1}, "weight_decay: must be a number in [0.0, 1.0)"),
        ("resnet20", {"bn_epsilon": 0}, "bn_epsilon: must be a number in (0, 1)"),
        ("wrn_16_8", {"dropout": 1.0}, "dropout: must be a number in [0.0, 1.0)"),
        ("nin", {"batch_norm": "yes"}, "nin: batch_norm: must be true or false"),
        ("nin_bn", {"batch_norm": False}, "nin_bn: batch_norm: is fixed by the preset"),
        ("resnext29_4x64d", {"seed_variant": 1}, "seed_variant: must be true or false"),
        ("lenet5", {"kernel_initializer": 3}, "kernel_initializer: must be a Keras initializer"),
        ("lenet5", {"num_classes": 0}, "lenet5: num_classes: must be an integer >= 1"),
        ("lenet5", {"input_shape": (32, 32)}, "input_shape: must be (height, width, channels)"),
        ("lenet5", {"input_shape": (15, 32, 3)}, "at least 16"),
        ("vgg19", {"input_shape": (8, 8, 3)}, "vgg19: input_shape: is too small"),
        ("densenet121", {"input_shape": (28, 28, 3)}, "at least 29"),
        ("densenet_bc_100_12", {"input_shape": (3, 3, 3)}, "at least 4"),
        ("densenet_bc_100_12", {"input_shape": (7, 7, 3), "seed_variant": True}, "at least 8"),
    ],
)  # fmt: skip
def test_bad_arguments_are_spec_errors(name: str, kwargs: dict, expected: str | None) -> None:
    if expected is None:
        assert check_model(name, **kwargs) == []
    else:
        assert expected in _problems(name, **kwargs)


def test_all_problems_are_reported_together() -> None:
    problems = check_model("resnet20", weight_decay=-1, bn_momentum=2.0, num_classes=0)
    assert len(problems) == 3
    assert all(p.startswith("resnet20: ") and "Received:" in p for p in problems)


def test_family_arguments_and_overrides() -> None:
    args = family_arguments("densenet")
    assert args["growth_rate"] == 12 and args["seed_variant"] is False
    assert family_arguments("se_resnext")["se"] is True
    config = resolve_model("densenet", depth=100, growth_rate=12, bottleneck=True, compression=0.5)
    assert config.kwargs["depth"] == 100 and config.num_classes == 10
    config = resolve_model("densenet121", num_classes=5, input_shape=(64, 64, 3), dropout=0.1)
    assert (config.num_classes, config.input_shape, config.kwargs["dropout"]) == (
        5, (64, 64, 3), 0.1,
    )  # fmt: skip
    assert resolve_model("resnet20", depth=20).kwargs["depth"] == 20  # same value is fine


def test_architecture_arguments_and_layer_settings() -> None:
    """A body's own arguments define the architecture, but for the variants a preset still
    takes; the layer settings (decay, initializer, BN, dropout) are the family's defaults."""
    from orchestrator.zoo.registry import FAMILIES

    assert FAMILIES["wrn"].arch_keys == {"depth", "width"}
    assert FAMILIES["densenet"].arch_keys == {
        "depth", "growth_rate", "bottleneck", "compression", "num_blocks", "layers_per_block",
        "init_filters", "stem",
    }  # fmt: skip
    assert FAMILIES["lenet"].arch_keys == frozenset()
    wrn = family_arguments("wrn")
    assert (wrn["weight_decay"], wrn["bn_momentum"], wrn["dropout"]) == (5e-4, 0.9, 0.0)
    assert "bn_momentum" not in family_arguments("lenet")  # LeNet has no BN to set
    with pytest.raises(SpecError, match="is fixed by the preset"):
        resolve_model("wrn_16_8", width=4)
    assert resolve_model("wrn_16_8", seed_variant=True, dropout=0.3).kwargs["dropout"] == 0.3


def test_smallest_input() -> None:
    assert smallest_input(lambda side: side >= 32) == 32
    assert smallest_input(lambda side: side >= 16) == 16
    assert smallest_input(lambda side: side >= 29) == 29
    assert smallest_input(lambda side: True) == 1


# ------------------------------------------------------------------ cost without TensorFlow


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_estimate_cost_reproduces_preset_constants(name: str) -> None:
    info = get_preset(name)
    assert estimate_cost(name) == Cost(info.params, info.macs)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnext29_4x64d", 20_365_248),
        ("resnext29_8x64d", 37_251_008),
        ("se_resnext29_4x64d", 20_881_354),
        ("wrn_16_8", 11_318_016),
        ("vgg19", 39_002_738),
        ("densenet_bc_100_12", 850_606),
        ("densenet_bc_100_24", 3_300_358),
        ("densenet_bc_160_24", 7_549_738),
    ],
)
def test_seed_variant_counts_match_the_reference(name: str, expected: int) -> None:
    assert estimate_cost(name, seed_variant=True).params == expected


def test_estimate_cost_follows_classes_shape_and_family_arguments() -> None:
    base = get_preset("resnet20")
    assert estimate_cost("resnet20", num_classes=100).params == base.params + 64 * 90 + 90
    assert estimate_cost("resnet20", input_shape=(64, 64, 3)).macs == 4 * base.macs - 3 * (
        64 * 10
    )  # convs scale with the area, the dense head does not
    small_bc = estimate_cost("densenet", depth=40, growth_rate=12, bottleneck=True, compression=0.5)
    assert small_bc.params == 181_210
    assert estimate_cost("densenet", depth=121, stem="imagenet", growth_rate=32, bottleneck=True,
                         compression=0.5, bn_epsilon=1.001e-5, num_classes=1000,
                         input_shape=(224, 224, 3)) == estimate_cost("densenet121")  # fmt: skip
    with pytest.raises(SpecError, match="input_shape"):
        estimate_cost("vgg19", input_shape=(16, 16, 3))


def test_get_preset_on_a_family_name_explains() -> None:
    with pytest.raises(UnknownModelError, match="is a model family, not a preset"):
        get_preset("densenet")


@pytest.mark.parametrize("family", list_families())
def test_odd_values_give_problems_not_exceptions(family: str) -> None:
    """`orch validate` feeds raw TOML values: every argument, any type, only messages."""
    odd = [None, "x", -1, 0, 1.5, [1], {"a": 1}, True, (6, 12), float("nan")]
    for arg in [*family_arguments(family), "num_classes", "input_shape"]:
        for value in odd:
            problems = check_model(family, **{arg: value})
            assert isinstance(problems, list)
            assert all(isinstance(p, str) and p.startswith(f"{family}: ") for p in problems)
