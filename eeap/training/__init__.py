"""Training with Lightning: the task's trainer wrapper (``module``), a run's one assembly (``experiment``), the
training driver (``run``), callbacks, loggers and sweeps."""
