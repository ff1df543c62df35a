"""MLflow at the edge, for every layer above `steps` (registry, mlproject, serving, analysis): the tracking
store, clients, health checks, MLflow errors as CardFlow errors, experiments, and logging whole runs."""
