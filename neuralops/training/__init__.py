"""Training: losses, metrics, optimizers, checkpoints and the trainer loop."""
