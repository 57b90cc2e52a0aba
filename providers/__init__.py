"""Dynamic providers: resources whose create/update run our own Python (the health gate)."""
