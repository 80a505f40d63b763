"""`orch report` rendered in a real headless browser (Chromium from Debian:
`apt-get install -y chromium`). A small harness page loads the report in an iframe and
writes what the browser actually laid out into its own DOM: table rows, decoded images
(naturalWidth), horizontal overflow. `--dump-dom` then returns that DOM."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_orch
from tests.integration.test_table_mlflow import JOB, write_golden_job

pytestmark = pytest.mark.integration

CHROMIUM = next(
    (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p),
    None,
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,2000",
]

HARNESS = """<!doctype html><html><body>
<iframe id="f" src="index.html" style="width:1400px;height:2000px;border:0"></iframe>
<pre id="result">pending</pre>
<script>
document.getElementById("f").addEventListener("load", () => {
  const d = document.getElementById("f").contentDocument;
  const imgs = [...d.querySelectorAll("figure img")];
  const scroll = d.querySelector(".table-scroll");
  document.getElementById("result").textContent = JSON.stringify({
    title: d.title,
    rows: [...d.querySelectorAll("table.orch-table tbody tr")].map(
      tr => [...tr.cells].map(td => td.innerText.trim())),
    headers: [...d.querySelectorAll("table.orch-table thead th")].map(th => th.innerText),
    images: imgs.map(i => ({alt: i.alt, w: i.naturalWidth, h: i.naturalHeight,
                            shown: i.getBoundingClientRect().width})),
    links: [...d.querySelectorAll("table.runs a")].map(a => a.getAttribute("href")),
    pageOverflow: d.documentElement.scrollWidth - d.documentElement.clientWidth,
    tableOverflow: scroll.scrollWidth - scroll.clientWidth,
  });
});
</script></body></html>"""


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def report_dir(orch_home: Path, tmp_path: Path) -> Path:
    orch_home.mkdir(parents=True, exist_ok=True)
    write_golden_job(f"sqlite:///{orch_home / 'mlflow.db'}")
    out = run_orch("report", JOB, env={"ORCH_HOME": str(orch_home)}, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    folder = orch_home / "reports" / JOB
    assert str(folder / "index.html") in out.stdout.replace("\n", "")
    return folder


def test_report_files(report_dir: Path) -> None:
    for name in ("accuracy_vs_params", "accuracy_vs_time", "learning_curves"):
        png = (report_dir / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    page = (report_dir / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "<link" not in page and "<script" not in page  # self-contained, nothing to fetch
    # A file store has no UI address: links are relative, with the run id beside them.
    assert re.search(r'href="#/experiments/\d+/runs/[0-9a-f]{32}"', page)


@pytest.mark.usefixtures("chromium_path")  # skips without one; fails under CI=true
def test_report_renders_in_chromium(report_dir: Path) -> None:
    (report_dir / "harness.html").write_text(HARNESS)
    done = chromium(
        "--allow-file-access-from-files",
        "--virtual-time-budget=15000",
        "--dump-dom",
        (report_dir / "harness.html").as_uri(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, re.S)
    assert match and match.group(1) != "pending", done.stdout[-2000:]
    dom = json.loads(
        match.group(1)
        .replace("&quot;", '"')
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
    )

    assert dom["title"] == f"{JOB} · benchmark report"
    assert [h.lower() for h in dom["headers"]][:3] == ["network", "gpu", "params"]
    assert [r[0] for r in dom["rows"]] == [
        "LeNet-5",
        "ResNet-20",
        "WRN-16-8",
        "VGG19",
        "DenseNet-100x12",
    ]
    resnet, wrn, vgg = dom["rows"][1], dom["rows"][2], dom["rows"][3]
    assert "91.89 ± 0.14" in resnet and "reproduced (+0.5σ)" in resnet
    assert "running: epoch 57/200" in wrn
    assert any(c.startswith("failed: ResourceExhaustedError") for c in vgg)
    assert "GTX 1080 Ti + Tesla V100 †" in " ".join(dom["rows"][4]).replace("\n", " ")

    # Every plot decoded and shown at a readable size; nothing spills sideways at 1400 px.
    assert [i["alt"] for i in dom["images"]] == [
        "Accuracy vs. parameters",
        "Accuracy vs. training time",
        "Learning curves (val_accuracy per epoch)",
    ]
    assert all(i["w"] > 300 and i["h"] > 200 and i["shown"] > 300 for i in dom["images"])
    assert dom["pageOverflow"] <= 0 and dom["tableOverflow"] <= 0
    assert len(dom["links"]) == 7 and all(h.startswith("#/experiments/") for h in dom["links"])


@pytest.mark.usefixtures("chromium_path")  # skips without one; fails under CI=true
def test_report_screenshot(report_dir: Path) -> None:
    shot = report_dir / "screenshot.png"
    done = chromium(f"--screenshot={shot}", (report_dir / "index.html").as_uri())
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    data = shot.read_bytes()
    width, height = struct.unpack(">II", data[16:24])  # the PNG IHDR chunk
    assert (width, height) == (1400, 2000) and len(data) > 100_000  # not a blank page
