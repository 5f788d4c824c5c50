"""Inference machinery around the models: static KV cache, sampling and the decode loops.

Nothing is imported here on purpose (no torch at ``import fastsovits.engine``).
"""
