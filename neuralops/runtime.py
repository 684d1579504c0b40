"""Process-wide runtime settings for training: the OpenMP wait policy, the C allocator's reuse of
freed memory, torch's CPU threads and opt-in compilation.

Call order in a training script::

    from neuralops import runtime
    runtime.prepare_openmp()                 # first, before anything imports torch
    ...
    runtime.configure_threads(cfg.trainer.num_threads)
    runtime.keep_freed_memory(cfg.trainer.keep_freed_memory)
    model = runtime.compile_model(model, cfg.trainer.compile)

**Why.** torch's CPU kernels run in OpenMP parallel regions (GNU libgomp in the pip wheels).
libgomp's threads *spin* while they wait at the end of a region. When another process keeps
a core busy, a spinning or descheduled thread makes every region wait for a whole scheduler
time slice, so many short regions in a row (a training step) run 10× slower than on one
thread. Measured on a 2-core machine with one competing busy process (``while True: pass``)
and other jobs, steps of the default FNO at 17², batch 32: 2 threads with libgomp's default
policy 3.3 s, 1 thread 0.30 s, 2 threads with ``OMP_WAIT_POLICY=PASSIVE`` 0.18 s (method and
figures: ``benchmarks/results/threads_cpu.md``). A passive wait puts a waiting thread to sleep
at once, so it never takes a core from the thread that holds the work.

libgomp reads ``OMP_WAIT_POLICY`` once, when torch loads it, so :func:`prepare_openmp` must
run before ``import torch``; this module imports torch only inside its functions.

**Freed memory.** torch takes CPU tensors from the C library's ``malloc``. glibc serves a
block of 32 MiB or more (and, until its threshold adapts, of 128 KiB or more) with a fresh
``mmap`` and returns it to the kernel on ``free``, so every large activation of every step is
page-faulted and zeroed by the kernel again. A (16, 32, 128, 128) float32 field is exactly
32 MiB: at 128² the FNO step spent half its time there. :func:`keep_freed_memory` makes glibc
keep freed memory for reuse (see ``benchmarks/results/fno_step_cpu.md``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

log = logging.getLogger(__name__)

WAIT_POLICY_VARIABLE = "OMP_WAIT_POLICY"
PASSIVE = "PASSIVE"


def prepare_openmp() -> bool:
    """Make OpenMP's waiting threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``), unless
    the user set ``OMP_WAIT_POLICY`` already (their value is kept).

    Must run before torch is imported. Returns whether the passive policy is in effect; when
    torch was imported first it cannot be, and a warning says so."""
    if WAIT_POLICY_VARIABLE not in os.environ:
        if "torch" in sys.modules:
            log.warning(
                "prepare_openmp() ran after torch was imported: OpenMP keeps its spinning wait policy; "
                "call it before importing torch, or set OMP_WAIT_POLICY=PASSIVE in the environment"
            )
            return False
        os.environ[WAIT_POLICY_VARIABLE] = PASSIVE
    return passive_wait()


def passive_wait() -> bool:
    """Whether OpenMP's waiting threads sleep (``OMP_WAIT_POLICY=PASSIVE`` at torch's import)."""
    return os.environ.get(WAIT_POLICY_VARIABLE, "").strip().upper() == PASSIVE


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads() -> int:
    """The default number of torch intra-op threads: ``OMP_NUM_THREADS`` when it is set to a
    positive integer (torchrun sets 1 per process unless told otherwise); else, when OpenMP waits
    passively (:func:`prepare_openmp`), the CPUs this process may use shared among the
    processes of its node (``LOCAL_WORLD_SIZE`` under torchrun); else 1, since spinning threads
    can make a step 10× slower than one thread on a busy machine."""
    requested = _positive_int_variable("OMP_NUM_THREADS")
    if requested is not None:
        return requested
    if not passive_wait():
        return 1
    return max(1, available_cpus() // (_positive_int_variable("LOCAL_WORLD_SIZE") or 1))


def _positive_int_variable(name: str) -> int | None:
    """The environment variable ``name`` as a positive integer, or None when unset or not one."""
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def configure_threads(num_threads: int | None) -> int:
    """Set torch's intra-op CPU threads: ``num_threads``, or :func:`default_threads` when None.

    Inter-op threads are left at torch's default: the CPU autograd engine and the training loop
    run on the calling thread and never use that pool. Returns the number of threads set.

    Raises:
        ConfigError: ``num_threads`` is not a positive integer (names ``trainer.num_threads``).
    """
    import torch

    from neuralops.errors import ConfigError

    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1):
        raise ConfigError(f"trainer.num_threads must be a positive integer or null, got {num_threads!r}")
    threads = default_threads() if num_threads is None else num_threads
    torch.set_num_threads(threads)
    if num_threads is None and not passive_wait() and _positive_int_variable("OMP_NUM_THREADS") is None:
        log.info("using 1 CPU thread: OpenMP threads spin while waiting (OMP_WAIT_POLICY is not PASSIVE); "
                 "set trainer.num_threads=N to use more")
    return threads


M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
KEEP_TOP_BYTES = 2**31 - 1  # the largest value mallopt takes (an int): ~2 GiB


def keep_freed_memory(enabled: bool = True) -> bool:
    """Make glibc's ``malloc`` serve every block from the heap and keep freed memory for reuse
    (``mallopt(M_MMAP_MAX, 0)`` and ``mallopt(M_TRIM_THRESHOLD, 2**31 - 1)``; see
    ``mallopt(3)``), when ``enabled``. The same effect as ``MALLOC_MMAP_MAX_=0
    MALLOC_TRIM_THRESHOLD_=...`` in the environment, or a caching allocator such as jemalloc
    preloaded, which Intel's and PyTorch's CPU performance guides recommend.

    Effect (``benchmarks/results/fno_step_cpu.md``, one CPU thread, a training step of the
    1.2 M-parameter FNO at batch 16): neuraloperator's 3.2× faster at 128² and 1.2× at 64²;
    ours, which runs large batches in slices (:mod:`neuralops.models.slicing`), 1.06× at 128²
    and unchanged at 64². Cost: the process keeps its peak of CPU memory instead of returning
    freed blocks to the system (resident memory does not shrink after a large step); set
    ``trainer.keep_freed_memory=false`` where other processes need that memory back.

    Process-wide and one-way: it applies to every later allocation, also other libraries'.
    Returns whether it is in effect: False when not ``enabled``, and on a C library other than
    glibc (musl, macOS, Windows), where it does nothing.
    """
    if not enabled or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP_TOP_BYTES))


def compiler_problem(device) -> str | None:
    """Why ``torch.compile`` cannot run on ``device`` here (one line), or None when it can.

    Compiles and runs a two-op function on a small tensor, which needs the backend's
    compiler (a C++ compiler on CPU, Triton on CUDA): a few seconds, once per process."""
    import torch

    probe = torch.compile(lambda t: torch.sin(t) * 2 + 1, dynamic=False)
    try:
        probe(torch.ones(8, device=device))
    except Exception as err:  # any failure of the backend means: no working compiler
        lines = str(err).strip().splitlines()
        return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return None


def compile_model(module, enabled: bool, device=None):
    """``module`` compiled in place with ``torch.compile`` (``nn.Module.compile``, so parameter
    names, ``state_dict`` keys and the module object stay the same) when ``enabled``, else
    ``module`` unchanged.

    When no compiler works on ``device`` (default: the device of the module's first parameter,
    else CPU), logs one warning line saying why and returns ``module`` uncompiled; training then
    runs eagerly. The first calls of a compiled model take longer (compilation, once per new
    input shape: 5-25 s for the benchmark FNO on one CPU thread, and once more at the second
    call of a shape, whose graph then reads the DFT matrices the first call cached instead of
    rebuilding them: :mod:`neuralops.tensor_cache`).

    While Dynamo traces, neuralops' layers use plain torch ops instead of their custom autograd
    nodes, contraction planner and batch slices, so FNO, TFNO, MG-TFNO, T1, MgNO and LSM compile
    as one graph without breaks (``tests/test_compile.py``); SFNO compiles in pieces
    (torch-harmonics builds its transforms inside the traced call). Measured on one CPU
    thread with freed memory kept (``benchmarks/results/compile_cpu.md``): the benchmark FNO's
    training step 1.05× faster at 64² and 1.09× at 128² than eager; neuraloperator's compiled
    step is slower than its eager one. Not yet measured on CUDA."""
    if not enabled:
        return module
    import torch

    if device is None:
        first = next(module.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    problem = compiler_problem(device)
    if problem is not None:
        log.warning("trainer.compile=true but torch.compile does not work on %s here (%s); running eagerly", device, problem)
        return module
    module.compile()
    return module
