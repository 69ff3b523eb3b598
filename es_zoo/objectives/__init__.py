"""Pretraining objectives: pure numpy batch transforms (no torch, no tokenizer calls)."""
