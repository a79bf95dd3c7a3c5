"""Per-epoch resume state, kept outside DVC's outputs and keyed by what the run depends on.

DVC deletes a stage's declared outputs before running its command, so the state lives in
``.resume/<stage>/<key>/`` (git-ignored). The key hashes the params sections the stage reads,
the split file and (phase 2) the initial checkpoint: state from any other configuration is
never used, and is deleted when a run starts. A successful run deletes its own state.

Every random stream of an epoch is derived from (seed, epoch, rank) at the start of that
epoch (see ``loop``), so the state at an epoch boundary is just model, optimizer, schedule,
history and the best epoch so far: resuming from it replays the remaining epochs bit for bit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..io import file_digest
from ..models.checkpoint import save_atomic
from ..workdir import KeyedDir, key_of

STATE = "state.pt"
BEST = "best.pt"


def run_key(params: Mapping[str, Any], files: Sequence[str | Path]) -> str:
    """The work folder's key: the stage's params and the content of its input files."""
    return key_of(params, [file_digest(f) for f in files])


class ResumeStore(KeyedDir):
    def load(self) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None] | None:
        state_path = self.dir / STATE
        if not state_path.is_file():
            return None
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        best_path = self.dir / BEST
        best = torch.load(best_path, map_location="cpu", weights_only=True) if best_path.is_file() else None
        return state, best

    def save(self, state: dict[str, Any], best: dict[str, torch.Tensor] | None) -> None:
        """Write the best weights (when they changed) before the state that refers to them."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if best is not None:
            save_atomic(best, self.dir / BEST)
        save_atomic(state, self.dir / STATE)
