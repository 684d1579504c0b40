"""Train a neural operator: ``python train.py model=fno data=darcy trainer.epochs=20 optim.lr=1e-3``.

Configuration lives in ``configs/`` (Hydra groups model/, data/, optim/ with optim/scheduler/,
trainer/), typed by the schemas in :mod:`neuralops.config_store`: option names, types and
ranges are checked before any file is opened. Every run gets its own directory
(``hydra.run.dir=DIR`` to choose it) holding ``metrics.json``, the pretrained model in
``model/`` (load with ``neuralops.load_pretrained``), checkpoints and plots.

A user error (a bad option, file or value) ends the run with one line on stderr starting with
``error:`` and exit status 1; a run that fails before it finishes an epoch leaves no run
directory behind. ``HYDRA_FULL_ERROR=1`` shows Hydra's full traceback instead.
"""

import os
import shutil
import sys
from pathlib import Path

from neuralops import runtime

runtime.prepare_openmp()  # before torch is imported: OpenMP reads its wait policy once

import hydra  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.errors import HydraException  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from omegaconf.errors import OmegaConfBaseException  # noqa: E402

from neuralops.config_store import one_line, register, validate  # noqa: E402
from neuralops.errors import NeuralopsError  # noqa: E402
from neuralops.io import signals_as_exceptions  # noqa: E402

register()

#: What Hydra itself puts in a run directory before the run starts.
_HYDRA_FILES = {".hydra", "train.log"}


def _discard_unstarted(run_dir: Path) -> None:
    """Remove ``run_dir`` if it holds nothing but what Hydra wrote (no epoch was completed)."""
    if not run_dir.is_dir():
        return
    entries = list(run_dir.iterdir())
    if all(e.name in _HYDRA_FILES or (e.is_dir() and not any(e.iterdir())) for e in entries):
        shutil.rmtree(run_dir, ignore_errors=True)


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


@hydra.main(version_base="1.3", config_path=str(Path(__file__).resolve().parent / "configs"), config_name="config")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        validate(cfg)
        from neuralops.training.run import run_experiment

        with signals_as_exceptions():  # SIGTERM unwinds like an exception: no half-written files
            run_experiment(cfg, run_dir, base_dir=hydra.utils.get_original_cwd())
    except NeuralopsError as err:
        if _rank() == 0:  # under torchrun the run dir is rank 0's
            _discard_unstarted(run_dir)
        raise SystemExit(f"error: {err}") from None
    if _rank() != 0:
        _discard_unstarted(run_dir)  # a rank started in another second gets its own, unused, Hydra dir


def cli() -> None:
    """Run :func:`main`, reporting Hydra's composition errors (unknown or mistyped options,
    missing config files) in one line."""
    user_setting = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let composition errors reach this function
    try:
        main()
    except (HydraException, OmegaConfBaseException) as err:
        if user_setting == "1":
            raise
        sys.exit(f"error: {one_line(err)}")
    finally:
        if user_setting is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = user_setting


if __name__ == "__main__":
    cli()
