"""Building blocks shared by the model families (pointwise MLPs, skips, padding, embeddings)."""
