"""The run store: a run directory of checkpointed stages, their Parquet parts, the vectors in them."""
