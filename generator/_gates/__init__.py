"""Generated schema gates (scripts/gen_schema_gates.py)."""
