"""Balanced randomised trial assignment for one participant (pure: no database).

Each participant gets ``trials`` main trials, half real and half fake (the fakes split evenly
over the model labels), ``qualification`` trials (half/half) before them, and ``attention``
checks mixed into the main trials (never first). An odd count gives the extra trial to real or
fake at random. Within each class the least-shown images so far are preferred (random tie
break), so images are judged about equally often across participants; no image appears twice
for one participant. The generator is seeded from (study seed, participant ordinal)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ganeval.study_app.protocol import REAL_LABEL


@dataclass(frozen=True)
class PoolImage:
    image_id: str
    exposure: int = 0      # trials already assigned with this image (all participants)


def split_half(n: int, rng: np.random.Generator) -> tuple[int, int]:
    """(real, fake) counts for n trials: half each, the odd one to a random side."""
    half = n // 2
    if n % 2 and rng.random() < 0.5:
        return half + 1, half
    return (half, half + 1) if n % 2 else (half, half)


def split_even(n: int, labels: Sequence[str], rng: np.random.Generator) -> dict[str, int]:
    """n spread over labels as evenly as possible; the remainder goes to random labels."""
    base, extra = divmod(n, len(labels))
    lucky = set(rng.choice(len(labels), size=extra, replace=False).tolist()) if extra else set()
    return {label: base + (i in lucky) for i, label in enumerate(labels)}


def needed_per_class(trials: int, qualification: int, labels: Sequence[str]) -> dict[str, int]:
    """The most images of each class one participant can need (odd splits included)."""
    n_fake = (trials + 1) // 2 + (qualification + 1) // 2
    n_real = n_fake
    per_label = {label: -(-((trials + 1) // 2) // len(labels)) + -(-((qualification + 1) // 2) // len(labels))
                 for label in labels}
    return {REAL_LABEL: n_real, **per_label}


def _least_shown(pool: Sequence[PoolImage], k: int, rng: np.random.Generator) -> list[str]:
    if k > len(pool):
        raise ValueError(f"need {k} images, the pool has {len(pool)}")
    ties = rng.random(len(pool))
    order = sorted(range(len(pool)), key=lambda i: (pool[i].exposure, ties[i]))
    return [pool[i].image_id for i in order[:k]]


def assign(pools: Mapping[str, Sequence[PoolImage]], labels: Sequence[str], attention_pool: Sequence[PoolImage],
           trials: int, qualification: int, attention: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """The participant's sequence as (phase, image_id), qualification first.

    ``pools`` maps 'real' and each fake label to its images in a canonical order."""
    q_real, q_fake = split_half(qualification, rng)
    m_real, m_fake = split_half(trials, rng)
    q_by_label = split_even(q_fake, labels, rng)
    m_by_label = split_even(m_fake, labels, rng)

    qual: list[str] = []
    main: list[str] = []
    for cls, nq, nm in [(REAL_LABEL, q_real, m_real)] + [(lb, q_by_label[lb], m_by_label[lb]) for lb in labels]:
        chosen = _least_shown(pools[cls], nq + nm, rng)
        chosen = [chosen[i] for i in rng.permutation(len(chosen))]  # which go to qualification: random
        qual += chosen[:nq]
        main += chosen[nq:]
    qual = [qual[i] for i in rng.permutation(len(qual))]
    main = [main[i] for i in rng.permutation(len(main))]

    sequence = [("main", image_id) for image_id in main]
    if attention:
        picks = (_least_shown(attention_pool, attention, rng) if attention <= len(attention_pool)
                 else [attention_pool[int(i)].image_id for i in rng.integers(0, len(attention_pool), attention)])
        for image_id in picks:
            at = int(rng.integers(1, len(sequence) + 1)) if sequence else 0
            sequence.insert(at, ("attention", image_id))
    return [("qualification", image_id) for image_id in qual] + sequence
