"""RunRecord: what the table needs from one trial's MLflow run, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    trial_key: str
    name: str
    model: str
    state: str  # PENDING | RUNNING | RETRYING | FINISHED | FAILED | DIVERGED
    gpu: str | None
    batch_size: int | None
    epochs: int | None
    epochs_done: int
    params: int | None
    train_time_s: float | None
    test_accuracy: float | None  # fraction in [0, 1]
    seed: int | None = None
    error: str | None = None
    reference: dict[str, str] = field(default_factory=dict)  # orch.ref.* tags
    start_time_ms: int = 0
