"""Compression: quantization (and, later, pruning and distillation)."""
