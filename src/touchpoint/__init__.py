"""touchpoint: a customer touchpoint warehouse (extract, model, check, report)."""

__version__ = "0.1.0"
