"""The guard pipeline's parts: llm-guard scanners, model-backed scanners, the semantic injection
detector and the pattern data they share. ``gateway.guards.pipeline`` assembles them.

Nothing here imports llm-guard, torch or transformers at import time: each loads on first use,
once per process (``import llm_guard`` alone takes ~7 s).
"""
