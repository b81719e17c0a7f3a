"""The logging feature of ops_observe."""
