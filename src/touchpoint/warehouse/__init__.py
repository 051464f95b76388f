"""The warehouse: connections, roles and the raw-layer schema."""
