"""Run a Python script and kill this process with SIGKILL right after its N-th optimizer step.

``python tests/kill_after_step.py N script.py [args...]`` — a deterministic ``kill -9`` for the
resume tests (also as torchrun's entry point, where every rank kills itself at the same step).
"""

import os
import runpy
import signal
import sys

from torch.optim.optimizer import register_optimizer_step_post_hook

_LIMIT = int(sys.argv[1])
_count = 0


def _kill_at_limit(optimizer, args, kwargs):
    global _count
    _count += 1
    if _count == _LIMIT:
        os.kill(os.getpid(), signal.SIGKILL)


register_optimizer_step_post_hook(_kill_at_limit)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
