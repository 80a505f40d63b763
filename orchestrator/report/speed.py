"""Speed ratios between hardware types, measured from finished runs (pure).

Training time is only comparable across GPU types once it is converted to one of them.
The conversion uses throughput actually measured by orch: the images/s of the *same model*
on each hardware label (e.g. "GTX 1080 Ti", "GTX 1080 Ti x2", "CPU"). A trial that took T
seconds at S images/s would have taken T * S / S_ref seconds on the reference hardware at
S_ref images/s, for the same number of images. Where no run of that model on the reference
hardware exists there is no ratio, and the time is left as measured (the table marks it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from statistics import median

from orchestrator.protocol import TrialState
from orchestrator.report.records import RunRecord


@dataclass(frozen=True)
class SpeedTable:
    # (model, hardware label) -> images/s: median over finished runs on one hardware type.
    throughput: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[RunRecord]) -> SpeedTable:
        samples: dict[tuple[str, str], list[float]] = {}
        for r in records:
            # Runs that moved between GPU types have no single speed; leave them out.
            if (
                r.state != TrialState.FINISHED
                or r.mixed_hardware
                or not r.gpu
                or not r.images_per_s
            ):
                continue
            if r.images_per_s > 0:
                samples.setdefault((r.model, r.gpu), []).append(r.images_per_s)
        return cls({k: median(v) for k, v in samples.items()})

    def ratio(self, model: str, source: str, target: str) -> float | None:
        """How many times faster `target` trains `model` than `source` does, or None."""
        if source == target:
            return 1.0
        s = self.throughput.get((model, source))
        t = self.throughput.get((model, target))
        return t / s if s and t else None

    def normalise(self, seconds: float, model: str, source: str, target: str) -> float | None:
        """Seconds on `source` -> estimated seconds on `target`; None without a ratio."""
        r = self.ratio(model, source, target)
        return seconds / r if r else None

    def hardware(self) -> list[str]:
        return sorted({hw for _, hw in self.throughput})

    def to_dict(self) -> dict[str, dict[str, float]]:
        """{model: {hardware: images/s}}, for JSON output."""
        out: dict[str, dict[str, float]] = {}
        for (model, hw), ips in sorted(self.throughput.items()):
            out.setdefault(model, {})[hw] = round(ips, 1)
        return out
