"""Error corpus, class 5: job files as a user hands them over (issue 15 §1, §4).

Encodings (UTF-16, a byte-order mark), paths that are no file (a folder, a named pipe, a
symlink loop, /dev/null), oversized and deeply nested files, numbers past what runs (NaN,
infinities, 64-bit epochs), names that hide what they say (bidi overrides, zero-width
characters, escapes in the experiment), and files that are fine and must stay so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.corpus import TINY_JOB, Case, check, run_corpus, write

JOB = TINY_JOB.format(name="tiny", trial="a")


def jf(content: str | bytes, name: str = "job.toml") -> object:
    def setup(folder: Path) -> None:
        write(folder / name, content)

    return setup


def with_key(line: str) -> object:
    """The tiny job with one more trial key."""
    return jf(JOB.replace("epochs = 1", f"epochs = 1\n{line}"))


def with_job_key(line: str) -> object:
    """The tiny job with one more [job] key."""
    return jf(JOB.replace('name = "tiny"', f'name = "tiny"\n{line}', 1))


def fifo(folder: Path) -> None:
    os.mkfifo(folder / "job.toml")  # nobody writes to it: reading must not wait for one


V = ["validate", "job.toml"]
CASES: list[Case] = [
    # encodings
    Case("utf16", V, setup=jf(JOB.encode("utf-16")), match="UTF-16.*save it as UTF-8"),
    Case("utf16-be", V, setup=jf(b"\xfe\xff" + JOB.encode("utf-16-be")), match="UTF-16"),
    Case("utf8-bom-is-fine", V, setup=jf(b"\xef\xbb\xbf" + JOB.encode()), kind="ok"),
    Case(
        "utf8-bom-plan", ["plan", "job.toml"], setup=jf(b"\xef\xbb\xbf" + JOB.encode()), kind="ok"
    ),
    Case(
        "latin1", V, setup=jf(JOB.replace("tiny", "caf\xe9").encode("latin-1")), match="not UTF-8"
    ),
    Case("crlf-is-fine", V, setup=jf(JOB.replace("\n", "\r\n").encode()), kind="ok"),
    Case("nul-byte", V, setup=jf(JOB.encode() + b"\x00\n"), match="not valid TOML"),
    # paths that are not a job file
    Case("a-folder", ["validate", "."], match="is a folder, not a job file"),
    Case("a-folder-submit", ["submit", "sub"], setup=lambda d: (d / "sub").mkdir(), match="folder"),
    Case("dev-null", ["validate", "/dev/null"], match="no trials"),
    Case("named-pipe", V, setup=fifo, match="job.toml"),
    Case("named-pipe-plan", ["plan", "job.toml"], setup=fifo, match="job.toml"),
    Case(
        "symlink-loop",
        V,
        setup=lambda d: (d / "job.toml").symlink_to(d / "job.toml"),
        match="job.toml: cannot read the job file",
    ),
    Case(
        "symlink-to-missing",
        V,
        setup=lambda d: (d / "job.toml").symlink_to(d / "gone.toml"),
        match="no such job file",
    ),
    Case("empty-file", V, setup=jf(""), match="no trials"),
    Case("one-missing-of-two", ["validate", "job.toml", "nope.toml"], setup=jf(JOB), match="nope"),
    # size and depth
    Case(
        "oversized",
        V,
        setup=jf(JOB + "#" + "x" * (17 << 20) + "\n"),
        match="larger than 16 MiB",
    ),
    Case("long-comment-is-fine", V, setup=jf(JOB + "#" + "x" * (4 << 20) + "\n"), kind="ok"),
    Case("deep-arrays", V, setup=jf(JOB + "[x]\na = " + "[" * 5000 + "]" * 5000), match="deep"),
    Case(
        "deep-inline-tables",
        V,
        setup=with_key("model_args = " + "{a = " * 3000 + "1" + "}" * 3000),
        match="deep",
    ),
    Case(
        "20000-trial-tables",
        V,
        setup=jf(
            '[job]\nname = "m"\n'
            + "".join(
                f'[[trial]]\nmodel = "lenet5"\ndataset = "digits"\nepochs = 1\nseed = {i}\n'
                for i in range(20_000)
            )
        ),
        match="20000 \\[\\[trial\\]\\] tables, more than 10000",
        timeout=30,
    ),
    Case("seeds-200000", V, setup=with_key(f"seeds = {list(range(200_000))}"), match="200000"),
    Case("repeats-1e8", ["plan", "job.toml"], setup=with_key("repeats = 100000000"), match="10000"),
    # numbers valid in TOML that no run takes
    Case(
        "epochs-3e9", V, setup=jf(JOB.replace("epochs = 1", "epochs = 3000000000")), match="100000"
    ),
    Case(
        "epochs-1e6-plan",
        ["plan", "job.toml"],
        setup=jf(JOB.replace("1\n", "1000000\n")),
        match="epochs",
    ),
    Case("epochs-float", V, setup=jf(JOB.replace("epochs = 1", "epochs = 1.0")), match="integer"),
    Case(
        "epochs-2e64",
        V,
        setup=jf(JOB.replace("epochs = 1", "epochs = " + "9" * 20)),
        match="64 bits",
    ),
    Case("batch-size-3e9", V, setup=with_key("batch_size = 3000000000"), match="batch_size"),
    Case(
        "max-retries-huge",
        V,
        setup=with_key("resources = { max_retries = 10000000000 }"),
        match="max_retries",
    ),
    Case("lr-nan", V, setup=with_key("recipe = { lr = nan }"), match="lr: must be a finite number"),
    Case("lr-minus-inf", V, setup=with_key("recipe = { lr = -inf }"), match="finite"),
    Case("momentum-nan", V, setup=with_key("recipe = { momentum = nan }"), match="momentum"),
    Case("gpus-inf", V, setup=with_key("resources = { gpus = inf }"), match="gpus"),
    Case("timeout-inf", V, setup=with_key("resources = { timeout_s = inf }"), match="timeout_s"),
    Case("reference-nan", V, setup=with_key("reference = { accuracy = nan }"), match="accuracy"),
    Case("val-size-nan", V, setup=with_key("data = { validation_size = nan }"), match="validation"),
    Case(
        "every-minutes-inf",
        V,
        setup=with_key("checkpoint = { every_minutes = inf }"),
        match="every_minutes",
    ),
    Case(
        "depth-bool",
        V,
        setup=jf(
            JOB.replace('"lenet5"', '"resnet"').replace(
                "epochs = 1", "epochs = 1\nmodel_args = { depth = true }"
            )
        ),
        match="depth",
    ),
    Case(
        "growth-rate-float-1e9",
        V,
        setup=jf(
            JOB.replace('"lenet5"', '"densenet"').replace(
                "epochs = 1", "epochs = 1\nmodel_args = { growth_rate = 1e9 }"
            )
        ),
        match="growth_rate",
    ),
    # names that hide what they say
    Case(
        "bidi-job-name", V, setup=jf(JOB.replace('"tiny"', '"ab\\u202ecd"')), match="text-direction"
    ),
    Case(
        "bidi-isolate-trial", V, setup=jf(JOB.replace('"a"', '"a\\u2067b"')), match="text-direction"
    ),
    Case(
        "zero-width-job-name",
        V,
        setup=jf(JOB.replace('"tiny"', '"ti\\u200bny"')),
        match="invisible",
    ),
    Case("bom-inside-trial-name", V, setup=jf(JOB.replace('"a"', '"a\\ufeff"')), match="invisible"),
    Case(
        "emoji-zwj-is-fine",
        V,
        setup=jf(JOB.replace('"a"', '"\U0001f468\\u200d\U0001f469"')),
        kind="ok",
    ),
    Case("unicode-names-are-fine", V, setup=jf(JOB.replace('"tiny"', '"日本語ジョブ"')), kind="ok"),
    Case(
        "experiment-escape",
        V,
        setup=with_job_key('experiment = "x\\u001b[2J"'),
        match="job.experiment: must not contain control",
    ),
    Case(
        "experiment-201-chars",
        V,
        setup=with_job_key(f'experiment = "{"e" * 201}"'),
        match="job.experiment: must be at most 200",
    ),
    Case(
        "experiment-bidi", V, setup=with_job_key('experiment = "a\\u202eb"'), match="job.experiment"
    ),
    Case("experiment-empty", V, setup=with_job_key('experiment = ""'), match="experiment"),
    Case("job-name-newline", V, setup=jf(JOB.replace('"tiny"', '"a\\nb"')), match="control"),
    Case("job-name-blank", V, setup=jf(JOB.replace('"tiny"', '"   "')), match="empty"),
    # shapes TOML allows that a job file does not
    Case(
        "job-not-a-table",
        V,
        setup=jf('job = 3\n[[trial]]\nmodel = "lenet5"\n'),
        match="job: must be a table",
    ),
    Case(
        "trial-a-table",
        V,
        setup=jf('[job]\nname = "x"\n[trial]\nmodel = "lenet5"\n'),
        match="array of tables",
    ),
    Case("duplicate-key", V, setup=with_key("epochs = 2"), match="not valid TOML"),
    Case(
        "gpu-type-empty-list",
        V,
        setup=with_key("resources = { gpus = 1, gpu_type = [] }"),
        match="gpu_type",
    ),
    Case(
        "max-concurrent-zero", V, setup=with_job_key("max_concurrent = 0"), match="max_concurrent"
    ),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_corpus(CASES, tmp_path_factory.mktemp("jobfiles-corpus"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_jobfiles_corpus(case: Case, results: dict) -> None:
    check(case, results[case.id])
