"""Offline evaluation: datasets and the runners that score the gateway and the agent against them.

- ``evals.corpus``: the adversarial email corpus (``datasets/attacks``) and its manifest.
- ``evals.guard_eval``: detection, quarantine and false-positive rates of the gateway guard
  (``python -m evals.guard_eval``).
- ``evals.golden``: the labelled golden dataset, its loader and checker.
- ``evals.runner`` (``mailspine eval run``): the real graph over a labelled dataset in a sandbox
  (``evals.sandbox``), read back (``evals.collect``), scored (``evals.metrics``, ``evals.fields``,
  ``evals.forbidden``) and reported (``evals.report``); runs are stored in ``eval_runs``.
"""
