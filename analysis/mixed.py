"""P(judged real) by model label, from a mixed-effects logistic model.

HYPE∞ pools judgments; a reviewer will ask whether a label's effect survives the facts that
some people say "real" more often than others and some images are easier than others. The
model (statsmodels ``BinomialBayesMixedGLM``, fitted by variational Bayes) is

    logit P(answer = real) = beta[model label] + u[participant] + v[image],
    u ~ N(0, s_participant²),  v ~ N(0, s_image²),

with one fixed effect per label (``real`` included, no intercept), so ``beta[label]`` is the
log-odds that a typical participant calls a typical image of that label real, and
``expit(beta)`` the implied probability. Posterior means and SDs are the variational ones;
the 95% interval is mean ± 1.96 SD on the logit scale, mapped through expit."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

ALPHA = 0.05


@dataclass
class MixedModelResult:
    effects: pd.DataFrame        # one row per model label: posterior mean/SD (logit), implied probability + CI
    random_sd: pd.DataFrame      # one row per random effect: posterior mean of its SD (logit scale)
    judgments: int
    participants: int
    images: int
    note: str = ""

    def to_dict(self) -> dict:
        return {"effects": self.effects.to_dict(orient="records"), "random_sd": self.random_sd.to_dict(orient="records"),
                "judgments": self.judgments, "participants": self.participants, "images": self.images,
                "note": self.note}


def judged_real_model(main: pd.DataFrame, alpha: float = ALPHA) -> MixedModelResult:
    """Fit the model on main-phase judgments; a table with a note instead of an exception when
    it cannot be fitted (e.g. one participant, or a label judged only one way)."""
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    data = pd.DataFrame({"judged_real": (main["answer"] == "real").astype(float),
                         "label": main["model_label"].astype(str), "participant": main["participant"].astype(str),
                         "image": main["image_id"].astype(str)})
    n_people, n_images = data["participant"].nunique(), data["image"].nunique()
    labels = ["real"] + sorted(set(data["label"]) - {"real"}) if "real" in set(data["label"]) else sorted(set(data["label"]))
    empty = MixedModelResult(pd.DataFrame(columns=_EFFECT_COLUMNS), pd.DataFrame(columns=["effect", "sd"]),
                             len(data), n_people, n_images)
    vc = {}
    if n_people >= 2:
        vc["participant"] = "0 + C(participant)"
    if n_images >= 2:
        vc["image"] = "0 + C(image)"
    if not vc:
        empty.note = "not fitted: needs at least 2 participants or 2 images"
        return empty
    data["label"] = pd.Categorical(data["label"], categories=labels)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            model = BinomialBayesMixedGLM.from_formula("judged_real ~ 0 + label", vc, data)
            fit = model.fit_vb()
    except (ValueError, np.linalg.LinAlgError) as err:
        empty.note = f"not fitted: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return empty
    z = float(norm.isf(alpha / 2))
    rows = []
    for name, mean, sd in zip(model.exog_names, fit.fe_mean, fit.fe_sd):
        label = re.sub(r"^label\[(.*)\]$", r"\1", name)
        sub = data[data["label"] == label]
        rows.append({"model_label": label, "posterior_mean": float(mean), "posterior_sd": float(sd),
                     "p_judged_real": float(expit(mean)), "p_low": float(expit(mean - z * sd)),
                     "p_high": float(expit(mean + z * sd)), "observed_share_real": float(sub["judged_real"].mean()),
                     "judgments": int(len(sub))})
    # vcp_mean is the posterior mean of log(SD) of each random effect
    random_sd = pd.DataFrame({"effect": list(vc), "sd": np.exp(np.asarray(fit.vcp_mean, dtype=float)),
                              "log_sd_posterior_sd": np.asarray(fit.vcp_sd, dtype=float)})
    note = "" if n_people >= 2 and n_images >= 2 else "fitted without a random effect for " + (
        "participants (only one)" if n_people < 2 else "images (only one)")
    return MixedModelResult(pd.DataFrame(rows, columns=_EFFECT_COLUMNS), random_sd, len(data), n_people, n_images, note)


_EFFECT_COLUMNS = ["model_label", "posterior_mean", "posterior_sd", "p_judged_real", "p_low", "p_high",
                   "observed_share_real", "judgments"]
