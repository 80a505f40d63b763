"""orch: a distributed job orchestrator for CNN training grids (Ray Tune, Keras 3, MLflow)."""

__version__ = "0.1.0"
