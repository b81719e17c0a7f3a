"""The metrics feature of ops_observe."""
