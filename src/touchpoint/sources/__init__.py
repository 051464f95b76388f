"""Source declarations: each vendor stream's name, keys, raw table, identifiers and record
parsing."""
