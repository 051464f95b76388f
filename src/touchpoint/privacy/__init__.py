"""Privacy: the identifiers a record carries, tombstones of erased people, and erasure."""
