"""Registered methods, one folder each (see `benchmark.registry.METHODS`)."""
