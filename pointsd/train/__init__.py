"""Training: the one accelerate loop, pre-training stages, downstream protocols, metrics."""
