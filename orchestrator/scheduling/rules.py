"""The scheduling rules a job runs under: their defaults (scheduling/policy/migrate.py,
scheduling/policy/profile.py) or the environment's ORCH_MIGRATE_RESTART_S,
ORCH_MIGRATE_MIN_GAIN_S, ORCH_MIGRATE_MIN_SHARE and ORCH_PROFILE_MAX_SHARE (positive
numbers; `orch` checks them before a command starts: config.NUMBERS_USED_LATER). Read by
the driver (scheduling/adapters/tuner.py) and by `orch plan`, which must not import Ray."""

from __future__ import annotations

from orchestrator.config import env_seconds
from orchestrator.scheduling.policy.migrate import Rule
from orchestrator.scheduling.policy.profile import MAX_SHARE


def migration_rule() -> Rule:
    """When a running trial is worth moving to a faster GPU (policy/migrate.py)."""
    return Rule(
        restart_s=env_seconds("ORCH_MIGRATE_RESTART_S", Rule.restart_s),
        min_gain_s=env_seconds("ORCH_MIGRATE_MIN_GAIN_S", Rule.min_gain_s),
        min_share=env_seconds("ORCH_MIGRATE_MIN_SHARE", Rule.min_share),
    )


def profile_share() -> float:
    """The most a profiling round may cost, as a share of the job's estimated makespan
    (policy/profile.py)."""
    return env_seconds("ORCH_PROFILE_MAX_SHARE", MAX_SHARE)
