"""Official checkpoint files <-> fastsovits modules.

All key mapping between the official GPT-SoVITS layouts and our modules lives in this package:
``gpt`` (s1 ``.ckpt``), ``sovits`` (s2 ``.pth``) and the shared restricted reader in ``common``.
Nothing is imported here on purpose (no torch at ``import fastsovits.checkpoints``).
"""
