"""The first-party middlewares, one per module, registered in group ``ops_observe.middleware``."""
