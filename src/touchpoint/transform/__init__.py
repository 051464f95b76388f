"""Transformation: running the dbt project (build, manifest) against the warehouse as its role."""
