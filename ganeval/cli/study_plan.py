"""``ganeval study plan``: participants × trials for a target precision, and power."""
from __future__ import annotations

import argparse

from ganeval.cli.common import (HelpFormatter, emit_json, nonneg_float, open_unit_float, positive_int,
                                positive_int_list)

DESCRIPTION = """\
How many participants and trials a real-vs-fake study needs. Whole studies are simulated from
the judged-real mixed model (logit P(real) = beta[label] + u[person] + v[image]) for each
design, and the table gives the 95% CI half-width of the estimate (fool rate, HYPE-inf or
kappa) and, with --difference, the power to detect that difference in fool rate between two
models. The model's parameters come from a pilot study's export (--pilot), else from the
stated defaults, which the output repeats."""

EXAMPLES = """examples:
  ganeval study plan                                   # defaults: fool rate 0.30, half-width 0.05
  ganeval study plan --metric hype-inf --half-width 0.03 --trials 50,100,200
  ganeval study plan --difference 0.10                 # power to tell two models 10 points apart
  ganeval study plan --pilot pilot-responses.csv --json"""


def register(actions: argparse._SubParsersAction) -> None:
    plan = actions.add_parser("plan", help="participants x trials for a target CI half-width, and power",
                              description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter)
    plan.add_argument("--metric", choices=("fool-rate", "hype-inf", "kappa"), default="fool-rate",
                      help="the estimate whose precision is planned")
    plan.add_argument("--half-width", type=open_unit_float, default=0.05, help="target 95%% CI half-width")
    plan.add_argument("--difference", type=open_unit_float, default=None,
                      help="a difference in fool rate between two models: report the power to detect it")
    plan.add_argument("--pilot", default=None, metavar="CSV",
                      help="a pilot study's responses (`ganeval study export`): fit the model's parameters on it")
    plan.add_argument("--participants", type=positive_int_list, default=(10, 20, 30, 50, 75, 100),
                      metavar="N,N,...", help="participant counts to simulate")
    plan.add_argument("--trials", type=positive_int_list, default=(20, 50, 100), metavar="T,T,...",
                      help="main trials per participant to simulate (split evenly over reals and models)")
    plan.add_argument("--fool-rate", type=open_unit_float, default=0.30, help="assumed share of fakes judged real")
    plan.add_argument("--real-error", type=open_unit_float, default=0.20, help="assumed share of reals judged fake")
    plan.add_argument("--person-sd", type=nonneg_float, default=0.6, help="assumed SD of participants (logit)")
    plan.add_argument("--image-sd", type=nonneg_float, default=1.0, help="assumed SD of images (logit)")
    plan.add_argument("--images", type=positive_int, default=None,
                      help="images per label in the study (default: 100, or the pilot's)")
    plan.add_argument("--simulations", type=positive_int, default=400, help="simulated studies per design")
    plan.add_argument("--seed", type=int, default=0, help="simulation seed")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganeval.analysis import plan as planning
    from ganeval.analysis.responses import load_responses, main_trials

    if args.pilot:
        model = planning.model_from_pilot(main_trials(load_responses(args.pilot)), args.images)
    else:
        model = planning.default_model(args.fool_rate, args.real_error, models=2 if args.difference else 1,
                                       difference=args.difference or 0.0,
                                       sd_person=args.person_sd, sd_image=args.image_sd,
                                       images_per_label=args.images or 100)
    result = planning.plan_table(model, args.metric, args.half_width, args.participants, args.trials,
                                 args.difference, args.simulations, args.seed)
    if args.json:
        emit_json(result.as_dict())
        return 0
    print(planning.format_plan(result))
    return 0
