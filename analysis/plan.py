"""How many participants and trials a study needs, by simulation from the judged-real GLMM.

The study's model (``analysis.mixed``) is ``logit P(answer = real) = beta[label] + u[person]
+ v[image]`` with u ~ N(0, s_person²) and v ~ N(0, s_image²). Given its parameters (fitted on a
pilot study's export, or stated defaults), ``plan_table`` simulates many whole studies for
each design (participants × trials per participant; trials split evenly between reals and
each model's fakes, images drawn from pools of a given size) and reports:

* the 95% CI half-width of the chosen estimate: 1.96 × its spread over the simulated studies
  (the fool rate = fake error of model 1, HYPE∞ of model 1 = ½(fake error + real error), both
  as means over evaluators as ``analysis.hype`` computes them; or κ = the mean per-evaluator
  Cohen's kappa against the truth);
* with two models and a difference in fool rate, the power of the study to detect it: the
  share of simulated studies whose difference exceeds the 95% critical value of the same
  design simulated without a difference (so every variance component, images included,
  counts).

The defaults (fool rate 0.30, real error 0.20, s_person 0.6 and s_image 1.0 on the logit
scale, 100 images per label) are assumptions, stated in the output; a pilot replaces them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

METRICS = ("fool-rate", "hype-inf", "kappa")
Metric = Literal["fool-rate", "hype-inf", "kappa"]
Z95 = 1.959963984540054


@dataclass
class PlanModel:
    """GLMM parameters on the logit scale: beta for reals (P(judged real)) and each model."""
    beta_real: float
    beta_models: list[float]
    sd_person: float
    sd_image: float
    images_per_label: int = 100
    source: str = "defaults"

    def to_dict(self) -> dict:
        return asdict(self)


def beta_for_rate(rate: float, sd_person: float, sd_image: float) -> float:
    """The conditional log-odds whose population-average probability is ``rate``:
    E[expit(beta + u + v)] = rate with u + v ~ N(0, s_person² + s_image²) (Gauss–Hermite)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    scale = float(np.hypot(sd_person, sd_image))
    weights = weights / weights.sum()

    def mean(beta: float) -> float:
        return float(weights @ expit(beta + scale * nodes)) - rate

    return float(brentq(mean, -30, 30))


def default_model(fool_rate: float = 0.30, real_error: float = 0.20, models: int = 1, difference: float = 0.0,
                  sd_person: float = 0.6, sd_image: float = 1.0, images_per_label: int = 100) -> PlanModel:
    rates = [fool_rate] + [fool_rate + difference] * (models - 1)
    return PlanModel(beta_for_rate(1 - real_error, sd_person, sd_image),
                     [beta_for_rate(r, sd_person, sd_image) for r in rates], sd_person, sd_image,
                     images_per_label, "defaults")


def model_from_pilot(main: pd.DataFrame, images_per_label: int | None = None, fit=None) -> PlanModel:
    """Parameters fitted on a pilot study's main-phase judgments (``analysis.mixed``; pass
    ``fit`` when the model is already fitted)."""
    from ganeval.analysis.mixed import judged_real_model
    from ganeval.errors import BadInput

    fit = fit if fit is not None else judged_real_model(main)
    effects = fit.effects.set_index("model_label")["posterior_mean"]
    if "real" not in effects.index or len(effects) < 2:
        raise BadInput(f"the pilot cannot be used to plan: the judged-real model was not fitted ({fit.note or 'no fakes'})")
    sds = dict(zip(fit.random_sd["effect"], fit.random_sd["sd"]))
    fakes = [label for label in effects.index if label != "real"]
    per_label = images_per_label or int(main.groupby("model_label")["image_id"].nunique().median())
    return PlanModel(float(effects["real"]), [float(effects[label]) for label in fakes],
                     float(sds.get("participant", 0.0)), float(sds.get("image", 0.0)), max(1, per_label),
                     f"pilot ({fit.participants} participants, {fit.judgments} judgments; models: {', '.join(fakes)})")


def _simulate(model: PlanModel, participants: int, trials: int, studies: int, rng: np.random.Generator,
              betas: list[float]) -> dict[str, np.ndarray]:
    """Per simulated study: fool rate of each model and real error (means over evaluators),
    and the mean per-evaluator kappa against the truth."""
    labels = 1 + len(betas)                       # reals, then each model
    per = max(1, trials // labels)
    shape = (studies, participants, per)
    u = rng.normal(0, model.sd_person, (studies, participants, 1))
    image_effects = rng.normal(0, model.sd_image, (studies, labels, model.images_per_label))
    judged_real = []
    for j, beta in enumerate([model.beta_real] + list(betas)):
        pick = rng.integers(0, model.images_per_label, shape)
        v = np.take_along_axis(image_effects[:, j][:, None, :].repeat(participants, 1), pick, axis=2)
        judged_real.append(rng.random(shape) < expit(beta + u + v))
    real_error = 1 - judged_real[0].mean(2)                        # studies × participants
    fool = [jr.mean(2) for jr in judged_real[1:]]
    # Cohen's kappa of each evaluator against the truth (reals and all fakes)
    n = per * labels
    answered_real = sum(jr.sum(2) for jr in judged_real)
    correct = judged_real[0].sum(2) + sum(per - jr.sum(2) for jr in judged_real[1:])
    p_o = correct / n
    p_truth_real = per / n
    p_e = p_truth_real * answered_real / n + (1 - p_truth_real) * (1 - answered_real / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)
    return {"fool": np.stack([f.mean(1) for f in fool], 1), "real_error": real_error.mean(1),
            "hype_inf": 0.5 * (fool[0] + real_error).mean(1), "kappa": np.nanmean(kappa, 1)}


@dataclass
class Plan:
    table: pd.DataFrame
    model: PlanModel
    metric: str
    half_width: float
    difference: float | None
    recommended: dict | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"metric": self.metric, "target_half_width": self.half_width, "difference": self.difference,
                "model": self.model.to_dict(), "recommended": self.recommended, "notes": self.notes,
                "table": self.table.to_dict(orient="records")}


def plan_table(model: PlanModel, metric: Metric = "fool-rate", half_width: float = 0.05,
               participants: tuple[int, ...] = (10, 20, 30, 50, 75, 100), trials: tuple[int, ...] = (20, 50, 100),
               difference: float | None = None, studies: int = 400, seed: int = 0) -> Plan:
    """Half-width (and power) for every design; the recommended design is the one meeting the
    target (and 80% power when a difference is asked) with the fewest judgments."""
    rng = np.random.default_rng(seed)
    key = {"fool-rate": "fool", "hype-inf": "hype_inf", "kappa": "kappa"}[metric]
    rows = []
    for n in participants:
        for t in trials:
            sims = _simulate(model, n, t, studies, rng, model.beta_models)
            est = sims[key][:, 0] if key == "fool" else sims[key]
            row = {"participants": n, "trials": t, "judgments": n * t, "estimate": float(np.nanmean(est)),
                   "half_width": float(Z95 * np.nanstd(est, ddof=1))}
            if difference is not None:
                base = model.beta_models[0]
                target = min(max(_population_rate(model, base) + difference, 1e-6), 1 - 1e-6)
                other = beta_for_rate(target, model.sd_person, model.sd_image)
                null = _simulate(model, n, t, studies, rng, [base, base])["fool"]
                alt = _simulate(model, n, t, studies, rng, [base, other])["fool"]
                critical = np.quantile(np.abs(null[:, 0] - null[:, 1]), 0.95)
                row["power"] = float(np.mean(np.abs(alt[:, 0] - alt[:, 1]) > critical))
            rows.append(row)
    table = pd.DataFrame(rows)
    ok = table["half_width"] <= half_width
    if difference is not None:
        ok &= table["power"] >= 0.8
    recommended = None
    if ok.any():
        best = table[ok].sort_values(["judgments", "participants"]).iloc[0]
        recommended = {k: (int(v) if k in ("participants", "trials", "judgments") else float(v))
                       for k, v in best.items()}
    notes = [f"parameters: {model.source}", f"{studies} simulated studies per design"]
    if recommended is None:
        notes.append("no design in the grid meets the target: add participants or trials")
    return Plan(table, model, metric, half_width, difference, recommended, notes)


def _population_rate(model: PlanModel, beta: float) -> float:
    nodes, weights = np.polynomial.hermite_e.hermegauss(64)
    scale = float(np.hypot(model.sd_person, model.sd_image))
    return float((weights / weights.sum()) @ expit(beta + scale * nodes))


def format_plan(plan: Plan) -> str:
    """The plan as a plain-text table with its assumptions and recommendation."""
    m = plan.model
    lines = [f"study plan: {plan.metric}, target 95% CI half-width {plan.half_width:g}"
             + (f", power to detect a fool-rate difference of {plan.difference:g}" if plan.difference else ""),
             f"model: {m.source}; P(real judged real) {_population_rate(m, m.beta_real):.2f}, fool rate(s) "
             + ", ".join(f"{_population_rate(m, b):.2f}" for b in m.beta_models)
             + f"; SD participants {m.sd_person:.2f}, images {m.sd_image:.2f} (logit); "
             f"{m.images_per_label} images per label", "",
             plan.table.to_string(index=False, float_format=lambda x: f"{x:.3f}"), ""]
    if plan.recommended:
        r = plan.recommended
        lines.append(f"recommended: {r['participants']} participants x {r['trials']} trials "
                     f"({r['judgments']} judgments): half-width {r['half_width']:.3f}"
                     + (f", power {r['power']:.2f}" if "power" in r else ""))
    lines += [f"note: {n}" for n in plan.notes[1:]]
    return "\n".join(lines)
