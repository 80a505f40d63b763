"""Fixtures shared by integration test modules."""

from tests.integration.real_cluster import real_cluster

__all__ = ["real_cluster"]  # the real multi-node cluster (session scoped)
