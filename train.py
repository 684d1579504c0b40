"""Train a neural operator: ``python train.py model=fno data=darcy trainer.epochs=20 optim.lr=1e-3``.

Configuration lives in ``configs/`` (Hydra groups model/, data/, optim/, trainer/); every run
gets its own directory (``hydra.run.dir=DIR`` to choose it) holding ``metrics.json``, the
pretrained model in ``model/`` (load with ``neuralops.load_pretrained``), checkpoints and plots.
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from neuralops.errors import NeuralopsError


@hydra.main(version_base="1.3", config_path="configs", config_name="config")
def main(cfg: DictConfig) -> None:
    from neuralops.training.run import run_experiment

    try:
        run_experiment(cfg, Path(HydraConfig.get().runtime.output_dir), base_dir=hydra.utils.get_original_cwd())
    except NeuralopsError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
