"""The alerts feature: Prometheus alert-rule packs (``[ops_observe.alerts]``); the packs themselves are to come."""
