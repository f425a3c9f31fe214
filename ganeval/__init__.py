"""ganeval: measure whether an anime-face GAN is good.

The flat Python API, the same functions the commands run (each loads its module on first use, so
``import ganeval`` stays light):

- ``compute_fid(a, b)``, ``compute_metrics(a, b, metrics=[...])``, ``metrics_from_features`` (``ganeval fid``)
- ``find_nearest(generated, train, k=4)`` (``ganeval nearest``)
- ``load_generator(x)``, ``sample(x, seeds=...)`` (``ganeval sample``: checkpoints, NVlabs pickles,
  TorchScript, your own ``G(z)``)

Results are the ``--json`` objects: ``MetricsResult`` and ``NearestResult`` are dicts whose keys
are also attributes, and ``as_dict()`` equals what the command prints."""
__version__ = "0.1.0"

_API = {
    "compute_fid": "ganeval.api",
    "compute_metrics": "ganeval.api",
    "metrics_from_features": "ganeval.api",
    "find_nearest": "ganeval.nearest.api",
    "load_generator": "ganeval.generators",
    "sample": "ganeval.generators",
    "Generator": "ganeval.generators",
    "MetricsResult": "ganeval.api",
    "NearestResult": "ganeval.nearest.api",
    "FeatureSet": "ganeval.features.featureset",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'ganeval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
