"""Multi-process training under ``torchrun``: the process-group helper lives in the core
(``ganeval.distributed``, shared with sharded FID); this module keeps the names models use."""
from __future__ import annotations

from ganeval.distributed import (  # noqa: F401 - re-exported for the trainer and the CLI
    World,
    any_flag,
    barrier,
    gather_objects,
    launched_by_torchrun,
    setup,
    teardown,
)
