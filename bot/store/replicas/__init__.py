"""Several replicas on one store: bounded waits for the paths that must answer fast
(`bounded`), the store's readiness (`health`), the one scheduler lock (`leader`), alert-storm
groups (`storms`)."""
