"""Few-shot fine-tuning: data preparation (``prepare``) and GPT / SoVITS training (``t2s``, ``sovits``).

Nothing is imported here; import the submodule you need.
"""
