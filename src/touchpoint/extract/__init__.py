"""Extraction: declarative streams over shared machinery (reading, validating, loading)."""
