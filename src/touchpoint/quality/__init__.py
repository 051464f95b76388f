"""Data quality: Great Expectations Core suites run against one interval of the warehouse."""
