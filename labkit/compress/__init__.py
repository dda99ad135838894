"""Compression: make a trained model fit a microcontroller.

- :mod:`labkit.compress.prune` — magnitude pruning: one-shot, prune-and-retrain, iterative, and
  gradual with tensorflow-model-optimization; per-layer or global; sparsity report; strip.
- :mod:`labkit.compress.structured` — structured pruning: remove whole units/filters, rebuild, fine-tune.
- :mod:`labkit.compress.quantize` — full-int8 post-training quantization (plus dynamic range,
  float16, float32 for comparison); evaluation through the reference interpreter.
- :mod:`labkit.compress.qat` — quantization-aware training.
- :mod:`labkit.compress.report` — per-layer quantization error (int8 vs float).
- :mod:`labkit.compress.plots` — the figures and the pruning slider of lessons 07 and 08.
- :mod:`labkit.compress.commands` — ``labkit quantize`` and ``labkit prune``.

Measuring a model on the device's terms (parameters, MACs, bytes, flash, RAM, Cortex-M4
instructions): :func:`labkit.measure.measure_model`.
"""
