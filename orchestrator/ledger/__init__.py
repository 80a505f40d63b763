"""orch's own ledger of jobs, trials and attempts (SQLAlchemy 2.0; SQLite or PostgreSQL)."""

from orchestrator.ledger.repository import FINISHED, TERMINAL, JobView, Ledger, TrialView, driver_id

__all__ = ["FINISHED", "TERMINAL", "JobView", "Ledger", "TrialView", "driver_id"]
