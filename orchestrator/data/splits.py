"""Stratified, seeded selection of indices: validation hold-out and fast-test subsets.

Pure numpy. Every class keeps its share of the selection (largest-remainder rounding), and
the choice depends only on (labels, size, seed), so two processes pick the same images.
"""

from __future__ import annotations

import numpy as np

from orchestrator.errors import SpecError


def resolve_count(size: float | int, total: int, key: str) -> int:
    """`size` as a number of images: a float is a fraction in [0, 1) of `total`, an int a
    count in [0, total). Raises SpecError naming `key` for anything else, or when nothing
    would be left.
    """
    if isinstance(size, bool) or not isinstance(size, int | float):
        raise SpecError(f"{key}: must be a fraction in [0, 1) or a count. Received: {size!r}")
    if isinstance(size, float):
        if not 0 <= size < 1:
            raise SpecError(
                f"{key}: a fraction must lie in [0, 1) (write a count as a whole number). "
                f"Received: {key}={size!r}"
            )
        count = round(size * total)
    else:
        count = size
    if not 0 <= count < total:
        raise SpecError(
            f"{key}: must leave at least one training image; the split has {total}. "
            f"Received: {key}={size!r}"
        )
    return count


def stratified_indices(y: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` indices into `y`, sorted, drawn per class in proportion to the class sizes."""
    if count <= 0:
        return np.zeros(0, np.int64)
    if count >= y.shape[0]:
        return np.arange(y.shape[0], dtype=np.int64)
    classes, sizes = np.unique(y, return_counts=True)
    quota = sizes * (count / y.shape[0])
    take = np.floor(quota).astype(np.int64)
    # Hand the leftover picks to the classes with the largest fractional parts (ties by
    # class order), so the total is exact and no class is over-represented by more than 1.
    leftover = count - int(take.sum())
    order = np.lexsort((classes, -(quota - take)))
    take[order[:leftover]] += 1
    rng = np.random.default_rng(seed)
    chosen = []
    for cls, n in zip(classes, take, strict=True):
        members = np.flatnonzero(y == cls)
        chosen.append(rng.permutation(members)[:n])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def stratified_split(y: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held_out) index arrays: `count` stratified indices held out, the rest kept."""
    held = stratified_indices(y, count, seed)
    mask = np.ones(y.shape[0], bool)
    mask[held] = False
    return np.flatnonzero(mask).astype(np.int64), held
