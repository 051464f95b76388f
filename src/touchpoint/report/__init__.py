"""The weekly touchpoint report: gather numbers from the marts, render, send once per recipient."""
