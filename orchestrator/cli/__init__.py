"""The `orch` command line: one module per command (see app.py)."""
