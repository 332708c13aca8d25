"""Offline evaluation: datasets and the runners that score the gateway and the agent against them.

- ``evals.corpus``: the adversarial email corpus (``datasets/attacks``) and its manifest.
- ``evals.guard_eval``: detection, quarantine and false-positive rates of the gateway guard
  (``python -m evals.guard_eval``).
"""
