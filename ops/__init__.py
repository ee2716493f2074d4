"""Operator commands for the async path: ``python -m ops redrive`` and ``python -m ops resubmit``."""
