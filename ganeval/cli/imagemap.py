"""What ``upscale`` and ``translate`` print after an image map (the work is
``ganeval.imagewrite.ImageMap``)."""
from __future__ import annotations

from ganeval.cli.common import note, warn
from ganeval.imagewrite import ImageMap


def report(job: ImageMap) -> int:
    if job.skipped:
        first, why = job.skipped[0]
        warn(f"{job.src}: skipped {len(job.skipped)} unreadable image(s), e.g. {first} ({why})")
    kept = f" ({job.kept} kept from the interrupted run)" if job.kept else ""
    note(f"wrote {job.written} image(s){kept} to {job.out}")
    return 0
