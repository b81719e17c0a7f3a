"""An example third-party plugin of ops_observe, installed by tests/spine/test_third_party_feature.py."""
