"""Error corpus, class 1: the command line (issue 15 §1, issue 14 §4 usage errors).

Every command with a missing argument, an unknown option and a bad value; `orch` alone,
unknown commands; the `orch train --set` keys train would ignore; report --out on a file.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from orchestrator.cli.app import COMMANDS  # every command orch registers is in the corpus
from tests.unit.corpus import Case, check, job_file, run_corpus, write

TAKEN = socket.socket()  # a port something else listens on (orch ui must not take it)
TAKEN.bind(("127.0.0.1", 0))
TAKEN.listen(1)

# What each command needs to get past its arguments (for the unknown-option cases).
ARGS = {
    "submit": ["job.toml"],
    "plan": ["job.toml"],
    "validate": ["job.toml"],
    "resume": ["tiny"],
    "cancel": ["tiny"],
    "logs": ["tiny"],
    "table": ["tiny"],
    "report": ["tiny"],
    "train": ["lenet5"],
    "cluster": ["check"],
}
REQUIRED = ("submit", "plan", "validate", "resume", "cancel", "logs", "table", "report", "train")


def _sets(sets: list[str]) -> list[str]:
    return [arg for s in sets for arg in ("--set", s)]


def _job(folder: Path) -> None:
    job_file(folder)


CASES: list[Case] = [
    # orch itself
    Case("orch-alone", [], kind="usage", match="missing command", real=True),
    Case("unknown-command", ["nosuchcmd"], kind="usage", match="no such command", real=True),
    Case("typo-command", ["sumbit", "job.toml"], kind="usage", match="no such command"),
    Case("unknown-global-option", ["--bogus"], kind="usage", match="no such option"),
    Case("unknown-short-option", ["-x", "status"], kind="usage", match="no such option"),
    Case("help-is-fine", ["--help"], kind="ok"),
    # a missing argument, for every command that takes one
    *[
        Case(f"{cmd}-missing-argument", [cmd], kind="usage", match="missing argument", real=i < 2)
        for i, cmd in enumerate(REQUIRED)
    ],
    Case("cluster-missing-action", ["cluster"], kind="usage", match="missing argument"),
    # an unknown option, for every command
    *[
        Case(
            f"{cmd}-unknown-option",
            [cmd, *ARGS.get(cmd, []), "--bogus"],
            setup=_job,
            kind="usage",
            match="no such option",
            real=cmd == "plan",
        )
        for cmd in COMMANDS
    ],
    # bad values
    Case("train-epochs-abc", ["train", "lenet5", "--epochs", "abc"], kind="usage", real=True),
    Case("train-epochs-float", ["train", "lenet5", "--epochs", "1.5"], kind="usage"),
    Case("train-batch-size-x", ["train", "lenet5", "--batch-size", "x"], kind="usage"),
    Case("train-seed-abc", ["train", "lenet5", "--seed", "abc"], kind="usage"),
    Case("train-lr-abc", ["train", "lenet5", "--lr", "abc"], kind="usage"),
    Case("train-train-size-1.5", ["train", "lenet5", "--train-size", "1.5"], kind="usage"),
    Case("train-stop-after-negative", ["train", "lenet5", "--stop-after", "-1"], kind="usage"),
    Case("train-stop-after-zero", ["train", "lenet5", "--stop-after", "0"], kind="usage"),
    Case("train-stop-after-abc", ["train", "lenet5", "--stop-after", "abc"], kind="usage"),
    Case("train-epochs-missing-value", ["train", "lenet5", "--epochs"], kind="usage"),
    Case("train-epochs-zero", ["train", "lenet5", "--epochs", "0"], match="epochs"),
    Case("train-lr-negative", ["train", "lenet5", "--lr", "-0.1"], match="lr"),
    Case("train-unknown-model", ["train", "nosuchnet"], match="unknown model"),
    Case("train-unknown-dataset", ["train", "lenet5", "-d", "cifar11"], match="cifar10"),
    Case("table-noise-abc", ["table", "tiny", "--noise", "abc"], kind="usage"),
    Case("table-sigmas-abc", ["table", "tiny", "--sigmas", "abc"], kind="usage"),
    Case("table-format-bogus", ["table", "tiny", "--format", "yaml"], match="--format"),
    Case("table-noise-negative", ["table", "tiny", "--noise", "-1"], match="--noise"),
    Case("table-sigmas-zero", ["table", "tiny", "--sigmas", "0"], match="--sigmas"),
    Case("report-noise-abc", ["report", "tiny", "--noise", "abc"], kind="usage"),
    Case("report-sigmas-negative", ["report", "tiny", "--sigmas", "-2"], match="--sigmas"),
    Case(
        "report-out-existing-file",
        ["report", "tiny", "--out", "taken.html"],
        setup=lambda d: write(d / "taken.html", "<html></html>").touch(),
        match="--out",
        check=lambda d, r: (d / "taken.html").read_text() == "<html></html>",
    ),
    Case(
        "report-out-under-a-file",
        ["report", "tiny", "--out", "taken/sub"],
        setup=lambda d: write(d / "taken", "x"),
        match="--out",
    ),
    Case("ui-port-abc", ["ui", "--port", "abc"], kind="usage"),
    Case("ui-workers-x", ["ui", "--workers", "x"], kind="usage"),
    Case("ui-port-out-of-range", ["ui", "--port", "99999"], kind="usage"),
    Case("ui-port-zero", ["ui", "--port", "0"], kind="usage"),
    Case("ui-workers-zero", ["ui", "--workers", "0"], kind="usage"),
    Case("cluster-unknown-action", ["cluster", "bogus"], match="unknown action"),
    Case("cluster-timeout-abc", ["cluster", "check", "--timeout", "abc"], kind="usage"),
    Case("submit-force-with-value", ["submit", "job.toml", "--force=3"], setup=_job, kind="usage"),
    Case("submit-no-such-file", ["submit", "nope.toml"], match="nope.toml"),
    Case("plan-no-such-file", ["plan", "nope.toml"], match="nope.toml"),
    Case("validate-no-such-file", ["validate", "nope.toml"], match="nope.toml"),
    Case(
        "plan-directory",
        ["plan", "adir"],
        setup=lambda d: (d / "adir").mkdir(),
        match="adir",
    ),
    Case(
        "plan-binary-file",
        ["plan", "bin.toml"],
        setup=lambda d: write(d / "bin.toml", bytes(range(256)) * 4),
        match="bin.toml",
    ),
    Case("models-no-match", ["models", "zzz*"], match="zzz"),
    # orch train --set: keys train would ignore, and contradictory ones
    *[
        Case(
            f"train-set-{name}",
            ["train", "lenet5", *_sets(sets)],
            match=m,
        )
        for name, sets, m in (
            ("seeds", ["seeds=[0,1,2]"], "seeds"),
            ("repeats", ["repeats=3"], "repeats"),
            ("reference", ["reference.accuracy=90"], "reference"),
            ("resources-gpus", ["resources.gpus=1"], "resources.gpus"),
            ("resources-gpu-type", ["resources.gpu_type='A100'"], "resources.gpu_type"),
            ("resources-table", ["resources={gpus=1}"], "resources.gpus"),
            ("resources-max-retries", ["resources.max_retries=2"], "max_retries"),
            ("job-key", ["job.name=x"], "job"),
            ("recipe-then-recipe-lr", ["recipe=3", "recipe.lr=1"], "recipe"),
            ("recipe-lr-then-recipe", ["recipe.lr=1", "recipe=3"], "recipe"),
            ("model-args-then-depth", ["model_args=3", "model_args.depth=20"], "model_args"),
            ("no-equals", ["recipe.lr"], "KEY=VALUE"),
            ("empty-key", ["=3"], "KEY=VALUE"),
            ("empty-part", ["recipe..lr=1"], "KEY=VALUE"),
            ("bad-value", ["recipe.lr=-1"], "lr"),
            ("unknown-recipe-key", ["recipe.lrr=0.1"], "lrr"),
        )
    ],
    # options given but blank, or numbers no run takes
    Case("plan-gpu-empty", ["plan", "job.toml", "--gpu", ""], setup=_job, match="--gpu"),
    Case("plan-format-empty", ["plan", "job.toml", "-f", ""], setup=_job, match="--format"),
    Case("table-format-empty", ["table", "tiny", "--format", ""], match="--format"),
    Case("table-format-uppercase", ["table", "tiny", "--format", "MD"], match="--format"),
    Case("table-noise-inf", ["table", "tiny", "--noise", "inf"], match="--noise.*finite"),
    Case("table-noise-nan", ["table", "tiny", "--noise", "nan"], match="--noise"),
    Case("table-sigmas-inf", ["table", "tiny", "--sigmas", "1e400"], match="--sigmas"),
    Case("report-noise-inf", ["report", "tiny", "--noise", "inf"], match="--noise"),
    Case("cluster-timeout-negative", ["cluster", "check", "--timeout", "-1"], match="--timeout"),
    Case("cluster-timeout-zero", ["cluster", "check", "--timeout", "0"], match="--timeout"),
    Case("cluster-timeout-nan", ["cluster", "check", "--timeout", "nan"], match="--timeout"),
    Case("cluster-timeout-inf", ["cluster", "check", "--timeout", "inf"], match="--timeout"),
    Case("train-epochs-million", ["train", "lenet5", "--epochs", "1000000"], match="epochs"),
    Case("train-epochs-2e64", ["train", "lenet5", "--epochs", "9" * 20], match="64 bits"),
    Case("train-batch-size-3e9", ["train", "lenet5", "-b", "3000000000"], match="batch_size"),
    Case("train-batch-size-zero", ["train", "lenet5", "-b", "0"], match="batch_size"),
    Case("train-seed-2e32", ["train", "lenet5", "--seed", "4294967296"], match="seed"),
    Case("train-seed-negative", ["train", "lenet5", "--seed", "-1"], match="seed"),
    Case("train-lr-nan", ["train", "lenet5", "--lr", "nan"], match="finite"),
    Case("train-lr-inf", ["train", "lenet5", "--lr", "inf"], match="finite"),
    Case("train-lr-zero", ["train", "lenet5", "--lr", "0"], match="lr"),
    Case("train-train-size-zero", ["train", "lenet5", "--train-size", "0"], match="train_size"),
    Case("train-train-size-huge", ["train", "lenet5", "--train-size", "10000000"], match="1438"),
    Case("train-empty-model", ["train", ""], match="model: must not be empty"),
    Case("train-empty-dataset", ["train", "lenet5", "-d", ""], match="dataset"),
    Case("validate-folder", ["validate", "."], match="is a folder"),
    Case("status-empty-name", ["status", ""], match="no job named"),
    Case("status-missing-file", ["status", "nope.toml"], match="nope.toml"),
    # --set: one value per key, and MODEL is the argument's
    *[
        Case(f"train-set-{name}", ["train", "lenet5", *argv], match=m)
        for name, argv, m in (
            ("model", ["--set", "model='vgg19'"], "MODEL argument"),
            ("twice", ["--set", "recipe.lr=0.1", "--set", "recipe.lr=0.2"], "already set"),
            ("table-then-table", ["--set", "recipe={lr=1}", "--set", "recipe={momentum=0.5}"],
             "already has keys"),
            ("epochs-and-option", ["--epochs", "5", "--set", "epochs=7"], "--epochs 5 both"),
            ("lr-and-option", ["--lr", "0.1", "--set", "recipe.lr=0.2"], "--lr 0.1 both"),
            ("seed-and-option", ["--seed", "1", "--set", "seed=2"], "--seed"),
            ("train-size-and-option", ["--train-size", "10", "--set", "data.train_size=20"],
             "--train-size"),
            ("epochs-float", ["--set", "epochs=1.5"], "integer"),
            ("epochs-string", ["--set", "epochs='abc'"], "integer"),
            ("lr-nan", ["--set", "recipe.lr=nan"], "finite"),
            ("dataset-unknown", ["--set", "dataset='mnist'"], "mnist"),
            ("model-args-unknown", ["--set", "model_args.foo=1"], "foo"),
            ("grid", ["--set", "grid={}"], "grid"),
            ("unicode-key", ["--set", "récipe.lr=1"], "orch train"),
            ("gpu-type", ["--set", "resources.gpu_type='V100'"], "gpu_type"),
        )
    ],
    # addresses: malformed ones are refused before anything is registered or started
    *[
        Case(
            f"{cmd}-address-{name}",
            [*{"submit": ["submit", "job.toml"], "plan": ["plan", "job.toml"]}.get(cmd, [cmd]),
             *(["check"] if cmd == "cluster" else []), "--address", address],
            setup=_job,
            match=m,
            creates=(".orch",) if cmd == "submit" else (),
        )
        for cmd, name, address, m in (
            ("submit", "empty", "", "--address '': empty"),
            ("submit", "blank", "  ", "--address"),
            ("plan", "empty", "", "--address '': empty"),
            ("cluster", "empty", "", "--address '': empty"),
            ("submit", "garbage", "foo", "not a Ray address"),
            ("submit", "ipv6-unclosed", "[::1", "not a Ray address"),
            ("submit", "ipv6-bare", "::1", "not a Ray address"),
            ("submit", "ipv6-refused", "[::1]:1", "cannot connect"),
            ("submit", "port-zero", "127.0.0.1:0", "not a Ray address"),
            ("submit", "port-65536", "127.0.0.1:65536", "not a Ray address"),
            ("cluster", "port-70000", "127.0.0.1:70000", "not a Ray address"),
            ("submit", "http-port-99999", "http://127.0.0.1:99999", "not a Ray address"),
            ("submit", "http-port-abc", "http://127.0.0.1:abc", "not a Ray address"),
            ("submit", "http-no-host", "http://:8265", "not a Ray address"),
            ("submit", "ftp", "ftp://h:21", "not a Ray address"),
            ("submit", "ray-client", "ray://h:10001", "not supported"),
            ("cluster", "ray-client", "ray://h:10001", "not supported"),
            ("submit", "unknown-host", "nosuchhost.invalid:6379", "unknown host"),
            ("plan", "refused", "127.0.0.1:1", "cannot connect"),
            ("plan", "garbage", "foo", "not a Ray address"),
        )
    ],
    Case("resume-address-empty", ["resume", "tiny", "--address", ""], match="--address"),
    # orch ui: what mlflow server would fail on (or hang on) after the exec, said first
    Case("ui-host-unknown", ["ui", "--host", "not a host!"], match="unknown host"),
    Case("ui-host-not-here", ["ui", "--host", "192.0.2.77", "--port", "5999"],
         match="cannot listen there"),
    Case("ui-port-in-use", ["ui", "--port", str(TAKEN.getsockname()[1])],
         match="Address already in use"),
    Case("ui-tracking-server", ["ui", "--dry-run"], env={"ORCH_TRACKING_URI": "http://h:5000"},
         match="is an MLflow server already"),
    Case("ui-tracking-garbage", ["ui", "--dry-run"], env={"ORCH_TRACKING_URI": "garbage"},
         match="tracking URI 'garbage'"),
]  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_corpus(CASES, tmp_path_factory.mktemp("cli-corpus"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_cli_corpus(case: Case, results: dict) -> None:
    check(case, results[case.id])


def test_train_set_seeds_trains_nothing(results: dict) -> None:
    """`--set seeds=[0,1,2]` is refused before any training (no checkpoint written)."""
    r = results["train-set-seeds"]
    assert not (r.folder / ".orch" / "storage").exists()
