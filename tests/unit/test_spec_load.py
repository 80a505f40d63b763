"""Job-file loading: valid files, and every kind of bad input giving one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec.load import load_job, parse_job
from tests.conftest import run_orch

VALID = """
[job]
name = "tiny"

[defaults]
dataset = "digits"
epochs = 2
batch_size = 32
[defaults.recipe]
lr = 0.05

[[trial]]
name = "LeNet"
model = "lenet5"

[[trial]]
name = "ResNet-20"
model = "resnet20"
recipe = { lr = 0.1 }
resources = { cpus = 2, gpus = 1, gpu_type = "GTX 1080 Ti" }
reference = { accuracy = 91.82, params = 270000, source = "cifar-10-cnn README" }
"""


def write(tmp_path: Path, text: str, name: str = "job.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        load_job(write(tmp_path, text))
    return e.value.problems


def test_valid_file_expands_with_defaults_and_keys(tmp_path: Path) -> None:
    job = load_job(write(tmp_path, VALID))
    assert job.name == "tiny"
    assert [t.name for t in job.trials] == ["LeNet", "ResNet-20"]
    lenet, resnet = job.trials
    assert lenet.epochs == resnet.epochs == 2 and lenet.batch_size == 32
    assert lenet.recipe.lr == 0.05 and resnet.recipe.lr == 0.1
    assert resnet.resources.cpus == 2 and resnet.resources.gpu_type == ("GTX 1080 Ti",)
    assert resnet.reference.accuracy == 91.82
    assert len(lenet.key) == 16 and lenet.key != resnet.key


def test_key_ignores_name_resources_reference_but_not_recipe(tmp_path: Path) -> None:
    a = load_job(write(tmp_path, VALID)).trials[1]
    renamed = VALID.replace('name = "ResNet-20"', 'name = "R20"').replace("cpus = 2", "cpus = 1")
    renamed = renamed.replace("accuracy = 91.82", "accuracy = 90.0")
    assert load_job(write(tmp_path, renamed, "b.toml")).trials[1].key == a.key
    other_lr = VALID.replace("recipe = { lr = 0.1 }", "recipe = { lr = 0.2 }")
    assert load_job(write(tmp_path, other_lr, "c.toml")).trials[1].key != a.key


def test_unknown_key_has_did_you_mean_and_names_file_and_trial(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, VALID.replace('model = "lenet5"', 'model = "lenet5"\nepoch = 3'))
    assert msg.startswith(str(tmp_path / "job.toml"))
    assert 'trial "LeNet"' in msg and "epoch: unknown key" in msg and "epochs" in msg


def test_wrong_type_and_out_of_range_reported_together(tmp_path: Path) -> None:
    text = VALID.replace("recipe = { lr = 0.1 }", 'recipe = { lr = -0.1, nesterov = "yes" }')
    msgs = problems(tmp_path, text)
    assert any("recipe.lr: must be > 0. Received: lr=-0.1" in m for m in msgs)
    assert any("recipe.nesterov: must be true or false" in m for m in msgs)


def test_missing_required_field(tmp_path: Path) -> None:
    text = VALID.replace('[defaults]\ndataset = "digits"\n', "[defaults]\n")
    msgs = problems(tmp_path, text)
    assert len(msgs) == 2 and all("dataset: missing" in m for m in msgs)


def test_unknown_model_suggests_close_names(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, VALID.replace('"resnet20"', '"resnet21"'))
    assert "model: unknown model" in msg and "resnet20" in msg and "resnet21" in msg


def test_bad_toml_names_file_and_line(tmp_path: Path) -> None:
    (msg,) = problems(tmp_path, "[job\nname=1")
    assert "not valid TOML" in msg and "line 1" in msg


def test_duplicate_trials_refused(tmp_path: Path) -> None:
    text = VALID + '\n[[trial]]\nname = "LeNet again"\nmodel = "lenet5"\n'
    (msg,) = problems(tmp_path, text)
    assert "same model, data, recipe and seed" in msg


def test_no_trials() -> None:
    with pytest.raises(SpecError, match="no trials"):
        parse_job({"job": {"name": "x"}}, "x.toml")


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda t: t.replace('model = "lenet5"', 'model = "lenet5"\nepoch = 3'),
            "epoch: unknown key. Did you mean: epochs?",
        ),
        (lambda t: t.replace("epochs = 2", 'epochs = "two"'), "epochs: must be an integer"),
        (lambda t: t.replace('dataset = "digits"\n', ""), "dataset: missing"),
    ],
)
def test_cli_exits_2_with_one_line_no_traceback(tmp_path: Path, edit, expected: str) -> None:
    path = write(tmp_path, edit(VALID))
    proc = run_orch("validate", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert expected in proc.stderr and str(path) in proc.stderr


def test_cli_validate_ok(tmp_path: Path) -> None:
    proc = run_orch("validate", str(write(tmp_path, VALID)))
    assert proc.returncode == 0, proc.stderr
    assert "2 trials" in proc.stdout


def test_load_job_text_reads_a_pipe_once_and_returns_its_text(tmp_path: Path) -> None:
    """`orch submit <(...)`: the spec the ledger keeps is the text the job was built from,
    read once (a second read of the pipe found nothing)."""
    import os
    import threading

    from orchestrator.spec.load import load_job_text

    text = '[job]\nname = "piped"\n[[trial]]\nmodel = "lenet5"\ndataset = "digits"\nepochs = 1\n'
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "w") as w:
            w.write(text)

    threading.Thread(target=feed).start()
    try:
        job, spec_text = load_job_text(f"/dev/fd/{read_end}")
    finally:
        os.close(read_end)
    assert job.name == "piped" and [t.model for t in job.trials] == ["lenet5"]
    assert spec_text == text
