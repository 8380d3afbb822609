"""PIT Studio engine: data, models, the PIT method, training, evaluation and export.

Pure torch + numpy; it never imports Qt, so it runs headless and under torchrun.
"""
__version__ = "0.1.0"
