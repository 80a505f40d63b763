"""RunRecord: what the table needs from one trial's MLflow run, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.protocol import TrialState

# orch.state values: a trial is unfinished while PENDING, RUNNING or RETRYING.
UNFINISHED = (TrialState.PENDING, TrialState.RUNNING, TrialState.RETRYING)
BROKEN = (TrialState.FAILED, TrialState.DIVERGED)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    trial_key: str
    name: str
    model: str
    state: TrialState  # its orch.state tag: PENDING ... FINISHED, FAILED, DIVERGED, CANCELLED
    gpu: str | None  # hardware actually used, e.g. "GTX 1080 Ti x2"; "A + B" when mixed
    batch_size: int | None
    epochs: int | None
    epochs_done: int
    params: int | None
    train_time_s: float | None  # compute time, excluding lost work
    test_accuracy: float | None  # fraction in [0, 1]
    seed: int | None = None
    error: str | None = None
    reference: dict[str, str] = field(default_factory=dict)  # orch.ref.* tags
    start_time_ms: int = 0
    group: str = ""  # grid cell without the seed (orch.group); "" = use the name
    position: int | None = None  # index of the trial in the job file (orch.position)
    dataset: str = ""
    mixed_hardware: bool = False  # the trial ran on more than one GPU type
    images_per_s: float | None = None  # last epoch's training throughput
    experiment_id: str = ""
    # orch.prov.* tags: versions, commit, GPU stack, determinism, data sha256 (see
    # tracking/provenance.py); {} for runs that never started
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def cell(self) -> str:
        """The grid cell this run belongs to: seeds of one cell share a row."""
        return self.group or self.name
