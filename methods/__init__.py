"""Registered methods, one folder each (see `benchmark.core.registry.METHODS`)."""
