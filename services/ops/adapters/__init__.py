"""Adapters of the ops service: its table, the DLQ topic and read-only store views."""
