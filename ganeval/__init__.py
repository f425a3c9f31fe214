"""ganeval: measure whether an anime-face GAN is good.

``ganeval.compute_fid(a, b)`` and ``ganeval.compute_metrics(a, b, metrics=[...])`` are the
Python API (see ganeval/api.py); they load lazily, so ``import ganeval`` stays light."""
__version__ = "0.1.0"

_API = ("compute_fid", "compute_metrics", "metrics_from_features")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from ganeval import api

        return getattr(api, name)
    raise AttributeError(f"module 'ganeval' has no attribute {name!r}")
