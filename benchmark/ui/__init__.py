"""Terminal progress and plots: display only, never part of a result."""
