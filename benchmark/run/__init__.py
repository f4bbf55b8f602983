"""Orchestration and the store: plans built on the driver, seed tasks, executors, sweeps,
the MLflow `Tracker` and the provenance recorded with every run. Never changes a prediction."""
