"""The warehouse: the embedded PostgreSQL cluster, connections, and the raw-layer schema."""
