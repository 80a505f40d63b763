"""The README's promises: its two opening commands exist, and its job example is valid."""

from __future__ import annotations

import re

from orchestrator.spec.load import parse_job
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_opens_with_the_two_commands() -> None:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block is not None
    commands = [ln.split("#")[0].strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert commands == ["make quickstart", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert "quickstart: install" in makefile and "orch submit jobs/quickstart.toml" in makefile
    assert re.search(r"^test: install-test\n\t\$\(BIN\)/pytest", makefile, re.M)
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_job_example_is_a_valid_job() -> None:
    import tomllib

    block = re.search(r"```toml\n(\[job\]\nname = \"resnets\".*?)```", README, re.S)
    assert block is not None
    job = parse_job(tomllib.loads(block.group(1)), "README.md")
    assert len(job.trials) == 9 and len(job.groups) == 3
