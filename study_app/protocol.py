"""The study protocol's constants, in one place: phases, statuses, answer reasons and the
labels people see, and the qualification rule (HYPE-style: continue only at >= 65% correct
on both real and fake qualification images)."""
from __future__ import annotations

# what a participant answers, and the image truths
ANSWERS = ("real", "fake")
TRUTHS = ANSWERS

# trial phases, in the order a participant meets them (attention checks are mixed into 'main')
PHASES = ("qualification", "main", "attention")

# participant statuses: consent -> [qualification ->] trials -> done, or qualification -> failed
STATUSES = ("consent", "qualification", "trials", "failed", "done")
PARTICIPANT_KINDS = ("human", "simulated")

# why a participant thinks an image is fake (codes stored in the database and the export)
REASONS = ("deformation", "missing_features", "no_expression", "artefacts", "other")
REASON_LABELS = {
    "deformation": "Deformation (distorted shapes, asymmetric eyes)",
    "missing_features": "Missing features (nose, mouth, …)",
    "no_expression": "Lack of expression",
    "artefacts": "Artefacts (smears, noise, odd textures)",
    "other": "Other",
}
ANSWER_LABELS = {"real": "Real", "fake": "Fake"}

CONFIDENCE_MIN, CONFIDENCE_MAX = 1, 5
CONFIDENCE_LABELS = {1: "1 – guessing", 2: "2", 3: "3", 4: "4", 5: "5 – certain"}

# qualification: the share correct needed on the real AND on the fake qualification images
QUALIFICATION_THRESHOLD = 0.65

# model_label of the real images and of the attention-check images
REAL_LABEL = "real"
ATTENTION_LABEL = "attention"


def qualification_passed(real_correct: int, real_total: int, fake_correct: int, fake_total: int,
                         threshold: float = QUALIFICATION_THRESHOLD) -> bool:
    """True when both shares reach ``threshold`` (a class with no trials does not block)."""
    ok_real = real_total == 0 or real_correct / real_total >= threshold - 1e-12
    ok_fake = fake_total == 0 or fake_correct / fake_total >= threshold - 1e-12
    return ok_real and ok_fake
