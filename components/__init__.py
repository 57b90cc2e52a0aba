"""ComponentResources: each one wires the resources of one concern and computes nothing itself.

The values they pass come from the pure modules in core/; the order they run in is stack.py.
"""
