"""Neural network modules (``nn.Module`` subclasses only).

Nothing is imported here on purpose: ``import fastsovits.models`` stays free of torch until a
submodule such as :mod:`fastsovits.models.t2s` is imported.
"""
