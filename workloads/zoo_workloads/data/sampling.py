"""Sample order per rank: shuffling, sharding and repeated augmentation (pure Python, unit-tested).

Repeated augmentation (MultiGrain, arXiv 1902.05509): each selected image appears `repeats` times in a row, so a
batch holds `repeats` independently augmented copies. Sharding gives rank r every num_shards-th index of one
shared permutation (the same seed on every rank), padded so every rank runs the same number of steps.
"""

from __future__ import annotations

import random


def shard_indices(
    num_samples: int,
    num_shards: int,
    shard_id: int,
    *,
    shuffle: bool,
    seed: int,
    epoch: int,
    repeats: int = 1,
) -> list[int]:
    """Sample indices of one epoch for one shard.

    The epoch draws num_samples / repeats distinct images (so its length matches an epoch without
    repetition), repeats each `repeats` times, then deals them out round-robin in groups of `repeats`
    so the copies of an image stay on the same rank and next to each other.
    """
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(f"shard_id {shard_id} must be in [0, {num_shards})")
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    order = list(range(num_samples))
    if shuffle:
        random.Random(seed * 100003 + epoch).shuffle(order)
    distinct = max(1, -(-num_samples // repeats)) if repeats > 1 else num_samples
    chosen = order[:distinct]
    per_shard = -(-len(chosen) // num_shards)
    padded = [chosen[i % len(chosen)] for i in range(per_shard * num_shards)]
    mine = padded[shard_id::num_shards]
    return [i for i in mine for _ in range(repeats)]
