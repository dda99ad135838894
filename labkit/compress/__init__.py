"""Compression: make a trained model fit a microcontroller.

- :mod:`labkit.compress.prune` — magnitude pruning: one-shot, prune-and-retrain, iterative, and
  gradual with tensorflow-model-optimization; per-layer or global; sparsity report; strip.
- :mod:`labkit.compress.structured` — structured pruning: remove whole units/filters, rebuild, fine-tune.
- :mod:`labkit.compress.quantize` — full-int8 post-training quantization (plus dynamic range,
  float16, float32 for comparison); evaluation through the reference interpreter.
- :mod:`labkit.compress.qat` — quantization-aware training.
- :mod:`labkit.compress.report` — per-layer quantization error (int8 vs float).
- :mod:`labkit.compress.distill` — knowledge distillation (teacher logits softened by a temperature).
- :mod:`labkit.compress.replace` — a layer replaced by a smaller sub-network, initialised in closed form.
- :mod:`labkit.compress.anneal` — per-layer-temperature annealing over those replacements under a budget.
- :mod:`labkit.compress.commands` — ``labkit quantize`` and ``labkit prune``; ``shrink_command``: ``labkit shrink``.

The lessons' figures of compression live with the course (:mod:`labkit.course.compress_plots`).

Measuring a model on the device's terms (parameters, MACs, bytes, flash, RAM, Cortex-M4
instructions): :func:`labkit.measure.measure_model`.
"""
