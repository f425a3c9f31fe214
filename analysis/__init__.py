"""Statistics, plots and reports on study judgments and metric outputs.

- ``responses``: load and validate judgments (export CSV or study folder)
- ``agreement``: confusion matrices, accuracy CIs, binomial tests, Cohen's and Fleiss' kappa
- ``hype``: HYPE∞ error rates with a bootstrap CI over evaluators
- ``screening``: who is analysed (qualification, attention checks, simulated never mixed with people)
- ``mixed``: P(judged real) by model label, mixed-effects logistic model (participant, image)
- ``intervals``: every CI clipped to its parameter's range
- ``per_image``: fool rates, rankings, reasons, response times
- ``inputs``: read ``ganeval nearest`` / ``ganeval fid --json`` / training-run outputs
- ``plots``: the figures; ``report``: compute and write everything; ``notebook``: the notebook + HTML
"""
