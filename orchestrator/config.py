"""Where things live. Everything local sits under ./.orch/ (or $ORCH_HOME); each location
can be pointed elsewhere by environment variable or by `.orch/config.toml`, so a cluster
deployment puts the ledger and MLflow on PostgreSQL and checkpoints on shared storage.

Precedence: environment variable > config file > default under the workspace.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OrchestratorError

ENV = {
    "ledger_url": "ORCH_LEDGER_URL",
    "tracking_uri": "ORCH_TRACKING_URI",
    "storage": "ORCH_STORAGE",
    "ray_address": "ORCH_RAY_ADDRESS",
}


@dataclass(frozen=True)
class Workspace:
    home: Path
    ledger_url: str
    tracking_uri: str
    artifact_root: str
    storage: str  # checkpoints and Ray Tune results: a local path, NFS path or URI
    ray_address: str  # "local" = embedded single-node Ray that never attaches elsewhere

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"


def workspace(home: str | os.PathLike[str] | None = None) -> Workspace:
    root = Path(home or os.environ.get("ORCH_HOME") or ".orch").absolute()
    file_cfg = _read_config(root / "config.toml")

    def pick(name: str, default: str) -> str:
        return os.environ.get(ENV[name]) or str(file_cfg.get(name) or default)

    return Workspace(
        home=root,
        ledger_url=pick("ledger_url", f"sqlite:///{root / 'orch.db'}"),
        tracking_uri=pick("tracking_uri", f"sqlite:///{root / 'mlflow.db'}"),
        artifact_root=str(file_cfg.get("artifact_root") or (root / "artifacts")),
        storage=pick("storage", str(root / "storage")),
        ray_address=pick("ray_address", "local"),
    )


def _read_config(path: Path) -> dict[str, object]:
    if not path.exists():
        return {}
    try:
        cfg = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise OrchestratorError(f"{path}: not valid TOML: {e}") from None
    known = {*ENV, "artifact_root"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise OrchestratorError(
            f"{path}: unknown key {unknown[0]!r}. Allowed: {', '.join(sorted(known))}."
        )
    return cfg
