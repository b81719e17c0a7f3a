"""The logging feature: JSON lines on loguru (`setup`, `stream`, `render`), the API (`api`, `context`).

The access-log middleware lives in `ops_observe.logging.middleware`; redaction in `ops_observe.redaction`.
"""
