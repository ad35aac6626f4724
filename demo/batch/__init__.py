"""`tinyzoo classify`: inputs, the worker pool, the local and Ray engines, the results file."""
