"""Sharing a CPU between the model and the writer thread of a FiftyOne run.

``apply_sam3`` segments batch k + 1 while a writer thread stores batch k, and storing is CPU work too:
FiftyOne compresses every mask with zlib as it writes it. On a CPU device torch's intra-op threads take
every core, and they spin while they wait for each other, so when the writer needs a core both slow down
(measured in ``docs/performance.md``: a run where writing takes as long as segmenting spent 5.9 CPU-seconds
with two torch threads and 3.6 with one, and finished in 2.2 s instead of 3.2 s). :class:`ThreadShare`
watches how long each batch takes to segment and to write; once writing takes at least half as long as
segmenting (``patience`` batches in a row, default one), torch gets one thread fewer for the rest of the
run. Runs where the model dominates (a full-size SAM 3 on a CPU) never reach that and keep every thread.
The count is set in the thread that calls ``observe`` (the run's, which runs the model) and restored when
the run ends.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class ThreadShare:
    """Gives the writer a core when it needs one; ``observe`` after each batch, ``close`` at the end."""

    def __init__(self, device: str | None, patience: int = 1) -> None:
        self.torch = None
        self.original = 1
        if str(device).startswith("cpu"):  # on an accelerator torch's CPU threads hardly compete
            import torch

            self.torch, self.original = torch, torch.get_num_threads()
        self.active = self.original > 1
        self.patience = patience
        self.heavy_writes = 0
        self.reduced = False

    def observe(self, segment_seconds: float, write_seconds: float) -> None:
        """Note one batch's time to segment and to write; hand a core to the writer once it needs it."""
        if not self.active or self.reduced:
            return
        self.heavy_writes = self.heavy_writes + 1 if write_seconds >= segment_seconds / 2 else 0
        if self.heavy_writes >= self.patience:
            self.torch.set_num_threads(self.original - 1)
            self.reduced = True
            log.debug(
                "writing is CPU-bound: torch uses %d threads for the rest of the run", self.original - 1
            )

    def close(self) -> None:
        """Give torch back the threads it had."""
        if self.reduced:
            self.torch.set_num_threads(self.original)
            self.reduced = False
