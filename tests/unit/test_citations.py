"""Whatever the project's files cite must be in the repository: no document on somebody's
development machine (an absolute path), no design note that only exists outside the repo."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCANNED = ("jobs", "docs", "orchestrator", "cluster", "dashboards")
FILES = sorted(
    p
    for d in SCANNED
    for p in (ROOT / d).rglob("*")
    if p.is_file() and p.suffix in {".py", ".toml", ".md", ".yaml", ".sh", ".j2", ".json"}
)
# A path on a development machine, e.g. /work/shared/..., /home/alice/..., /Users/bob/...
DEV_PATH = re.compile(r"(?<![\w.])/(?:work|home|Users|mnt/c)/[\w.-]+/")
# Container paths and Ray's session folders are places, not documents.
ALLOWED_PATHS = ("/home/ray/",)
DOC = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w.-]+\.md)\b")
# The seed repositories' own files, cited by name as their source (not orch's documents).
SEED_DOCS = {"README.md", "1_Lecun_Network/README.md", "htd/README.md"}
TOP = {p.name for p in ROOT.iterdir()}
REPO_FILES = subprocess.run(
    ["git", "-C", str(ROOT), "ls-files", "*.md"], capture_output=True, text=True
).stdout.split()  # a cited path starting here must exist


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_no_citation_points_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    bad = [m for m in DEV_PATH.findall(text) if not m.startswith(ALLOWED_PATHS)]
    assert not bad, f"{path}: cites {bad[0]}; put the document in docs/ and cite that"
    for cited in DOC.findall(text):
        if cited in SEED_DOCS or cited.startswith(("http", "www.")):
            continue
        if "/" in cited and cited.split("/")[0] not in TOP:
            continue  # not a path in this repository (e.g. an MLflow artifact path)
        here = [ROOT / cited, path.parent / cited]
        if "/" not in cited:  # a bare name (RESULTS.md): some file of the repo has it
            here += [ROOT / f for f in REPO_FILES if Path(f).name == cited]
        assert any(p.is_file() for p in here), f"{path}: cites {cited}, not in the repository"


def test_the_seed_reference_is_in_docs() -> None:
    text = (ROOT / "docs" / "seed_models.md").read_text()
    assert "Residual-Network50" in text and "BIGBALLON/cifar-10-cnn" in text
