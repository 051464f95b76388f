"""The weekly touchpoint report: gather numbers from the marts and render them per recipient."""
