"""Training loops and losses: embedder fine-tuning and the LLM's LoRA DPO, run with Ray Train."""
