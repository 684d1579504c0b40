"""What the device check's parts depend on, one line each: Python, torch, the GPU, the TF32
settings, and each of neuralops' dependencies with its version or the error that stops its
import.

    python benchmarks/environment.py

Exit status 1 when a dependency of neuralops does not import (neuraloperator, only compared
against, may be missing).
"""

from __future__ import annotations

import importlib
import platform
import sys

DEPENDENCIES = ("numpy", "scipy", "h5py", "yaml", "safetensors", "tensorly", "opt_einsum", "hydra", "omegaconf",
                "torch_harmonics", "neuralops")
OPTIONAL = ("neuralop",)


def main() -> int:
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda, "|", gpu)
    print("TF32: matmul", torch.backends.cuda.matmul.allow_tf32, "| cuDNN", torch.backends.cudnn.allow_tf32)
    missing = 0
    for name in DEPENDENCIES + OPTIONAL:
        try:
            module = importlib.import_module(name)
        except Exception as error:  # missing, or built for another torch: the parts that need it fail
            first_line = (str(error).splitlines() or [""])[0][:160]
            if name in OPTIONAL:
                print(f"{name}: not available, comparisons read n/a ({type(error).__name__}: {first_line})")
                continue
            missing += 1
            print(f"{name}: NOT IMPORTABLE ({type(error).__name__}: {first_line})")
            continue
        print(name, getattr(module, "__version__", ""))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
