"""Seeding: every run starts from the same random state for its seed."""

from __future__ import annotations

import random
import sys

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed python, numpy and (if a method imported it) torch, with deterministic torch ops and
    PyTorch's own TF32 defaults, whatever a run before it in this process set (a fine-tuned run
    sets TF32 explicitly)."""
    random.seed(seed)
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
