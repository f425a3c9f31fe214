"""Who the statistics are about: participants who passed qualification and every attention
check, and never simulated participants mixed with people.

HYPE (Zhou et al. 2019) counts only evaluators who passed the qualification (>= 65% correct on
both the real and the fake qualification images); an attention check (a scrambled image) that
was answered "real" says the person was not looking. Both are excluded by default and the
report says how many and why; ``include_all`` keeps them. Simulated participants (answers
drawn by a program) are never pooled with people: when both kinds answered, the people are
analysed and the simulated ones are listed as excluded, with or without ``include_all``."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ganeval.analysis.responses import ATTENTION_PHASE, MAIN_PHASE
from ganeval.errors import BadInput

# the study's qualification rule (study_app.protocol.QUALIFICATION_THRESHOLD; analysis imports only the core)
QUALIFICATION_THRESHOLD = 0.65
QUALIFICATION_PHASE = "qualification"
SIMULATED = "simulated"
REASON_SIMULATED = "simulated (not mixed with human participants)"
REASON_QUALIFICATION = "failed qualification"
REASON_ATTENTION = "missed an attention check"


@dataclass
class Screening:
    kept: pd.DataFrame       # every judgment (all phases) of the participants the statistics use
    excluded: pd.DataFrame   # participant, kind, reason (one row per excluded participant; reasons joined by '; ')
    flagged_kept: int        # participants who failed a check but were kept (include_all)
    include_all: bool
    analysed_kind: str       # 'human' or 'simulated' (never both)

    def summary(self) -> dict:
        """Counts for stats.json and the report's first lines."""
        by_reason: dict[str, int] = {}
        for reasons in self.excluded["reason"]:
            for reason in reasons.split("; "):
                by_reason[reason] = by_reason.get(reason, 0) + 1
        return {"analysed_kind": self.analysed_kind, "include_all": self.include_all,
                "participants_analysed": int(self.kept["participant"].nunique()),
                "participants_excluded": int(len(self.excluded)), "excluded_by_reason": by_reason,
                "failed_checks_but_kept": self.flagged_kept}

    def sentence(self) -> str:
        """One line for the report: how many were analysed, excluded and why."""
        s = self.summary()
        line = f"{s['participants_analysed']} {self.analysed_kind} participant(s) analysed"
        if s["participants_excluded"]:
            why = ", ".join(f"{n} {reason}" for reason, n in s["excluded_by_reason"].items())
            line += f"; {s['participants_excluded']} excluded ({why})"
        else:
            line += "; none excluded"
        if self.include_all:
            line += f"; --include-all kept {self.flagged_kept} who failed qualification or an attention check"
        return line


def check_failures(df: pd.DataFrame) -> dict[str, list[str]]:
    """participant → the checks they failed (qualification, attention), in words."""
    failed: dict[str, list[str]] = {}
    qual = df[df["phase"] == QUALIFICATION_PHASE]
    for person, part in qual.groupby("participant", sort=False):
        shares = part.groupby("truth")["correct"].mean()
        if (shares < QUALIFICATION_THRESHOLD - 1e-12).any():
            failed.setdefault(person, []).append(REASON_QUALIFICATION)
    attention = df[df["phase"] == ATTENTION_PHASE]
    for person, part in attention.groupby("participant", sort=False):
        if (part["correct"] == 0).any():
            failed.setdefault(person, []).append(REASON_ATTENTION)
    return failed


def screen(df: pd.DataFrame, include_all: bool = False) -> Screening:
    """Split validated responses into the judgments the statistics use and the excluded people.

    BadInput when nobody with main-phase judgments is left (naming why, and ``--include-all``)."""
    people = df.drop_duplicates("participant")[["participant", "participant_kind"]]
    kinds = set(people["participant_kind"])
    analysed_kind = "human" if kinds - {SIMULATED} else SIMULATED
    reasons: dict[str, list[str]] = {}
    for person, kind in zip(people["participant"], people["participant_kind"]):
        if analysed_kind != SIMULATED and kind == SIMULATED:
            reasons[person] = [REASON_SIMULATED]
    failures = check_failures(df)
    flagged_kept = 0
    for person, failed in failures.items():
        if person in reasons:
            continue
        if include_all:
            flagged_kept += 1
        else:
            reasons[person] = failed
    kind_of = dict(zip(people["participant"], people["participant_kind"]))
    excluded = pd.DataFrame([{"participant": p, "kind": kind_of[p], "reason": "; ".join(r)} for p, r in reasons.items()],
                            columns=["participant", "kind", "reason"])
    kept = df[~df["participant"].isin(reasons)].reset_index(drop=True)
    result = Screening(kept, excluded, flagged_kept, include_all, analysed_kind)
    if not (kept["phase"] == MAIN_PHASE).any() and (df["phase"] == MAIN_PHASE).any():
        raise BadInput(f"no participant is left to analyse: {result.sentence()}; "
                       "use --include-all to analyse everyone")
    return result
