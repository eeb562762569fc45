"""Embedder training: losses (one per file) and the Ray Train loop that runs them."""
