"""The tracing feature of ops_observe."""
