"""Training jobs: the queue, the worker protocol, image validation (issue 5)."""
