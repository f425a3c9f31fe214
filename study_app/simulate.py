"""Simulated participants: they answer a study through ``StudyStore`` (the app's own save path),
stored with kind 'simulated', so the demo, the tests and the benchmarks exercise the same code
as people do and the report can tell them apart.

The model is a small item-response one: each participant has a skill (a logit drawn so that an
image of average difficulty is judged right with probability in ``accuracy``), each image a
difficulty shared by everyone (so people agree beyond chance), attention checks are almost
always right. Each answer comes with a browser-style response time (log-normal, median about 1.5 s,
slower when less sure), drawn from its own stream so the answers do not depend on it. Seeded:
the same seed gives the same answers and times."""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ganeval.study_app.protocol import REASONS
from ganeval.study_app.store import ClientTiming, StudyStore, Trial

DEFAULT_ACCURACY = (0.55, 0.85)
ATTENTION_ACCURACY = 0.97


@dataclass(frozen=True)
class SimulatedAnswer:
    answer: str  # "real" | "fake"
    confidence: int  # 1..5
    reasons: list[str] = field(default_factory=list)


def skill_for_accuracy(accuracy: float) -> float:
    """The logit skill at which an image of average difficulty is judged right with ``accuracy``."""
    return float(np.log(accuracy / (1 - accuracy)))


def image_difficulty(image_id: str) -> float:
    """A difficulty shared by every participant, fixed by the image id."""
    return float(np.random.default_rng(zlib.crc32(image_id.encode())).normal(0, 1.2))


def simulated_answer(trial: Trial, real: bool, skill: float, rng: np.random.Generator) -> SimulatedAnswer:
    """One judgment of ``trial`` (whose image is real or not) by a participant of ``skill``."""
    p_right = ATTENTION_ACCURACY if trial.phase == "attention" else 1 / (1 + np.exp(-(skill + image_difficulty(trial.image_id))))
    right = rng.random() < p_right
    answer = "real" if real == right else "fake"
    reasons = list(rng.choice(REASONS[:4], size=int(rng.integers(1, 3)), replace=False)) if answer == "fake" else []
    confidence = int(np.clip(np.round(rng.normal(4 if right else 3, 1)), 1, 5))
    return SimulatedAnswer(answer, confidence, reasons)


def simulated_response_ms(confidence: int, clock: np.random.Generator) -> int:
    """Picture shown → press, as a browser would time it: log-normal around 1.5 s at full
    confidence, 0.3 s slower per step of doubt, capped at a minute."""
    median = 1500 + 300 * (5 - confidence)
    return int(min(60_000, round(clock.lognormal(np.log(median), 0.4))))


def image_truth(store: StudyStore) -> dict[str, str]:
    """image id → "real" | "fake": the admin's view, which a simulated participant needs to be right."""
    images = store.images_progress()
    return dict(zip(images["image_id"], images["truth"]))


def simulate_participant(store: StudyStore, skill: float, rng: np.random.Generator,
                         truth: dict[str, str] | None = None, clock: np.random.Generator | None = None) -> str:
    """A new simulated participant who gives consent and answers every trial; returns its token.
    ``clock`` draws the response times (none stored without it)."""
    truth = image_truth(store) if truth is None else truth
    token = store.start_participant(kind="simulated")
    store.give_consent(token)
    while (trial := store.current_trial(token)) is not None:
        a = simulated_answer(trial, truth[trial.image_id] == "real", skill, rng)
        timing = ClientTiming(simulated_response_ms(a.confidence, clock), None) if clock is not None else None
        store.record(token, trial.trial_id, a.answer, confidence=a.confidence, reasons=a.reasons, client=timing)
    return token


def simulate_participants(store: StudyStore, n: int, seed: int = 0,
                          accuracy: tuple[float, float] = DEFAULT_ACCURACY) -> list[str]:
    """``n`` simulated participants, each with an accuracy drawn uniformly from ``accuracy``;
    returns their tokens."""
    rng, clock = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    truth = image_truth(store)
    return [simulate_participant(store, skill_for_accuracy(rng.uniform(*accuracy)), rng, truth, clock)
            for _ in range(n)]
