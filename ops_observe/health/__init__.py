"""The health feature of ops_observe."""
