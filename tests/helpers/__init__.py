"""Helpers shared by the test tiers (tests/README.md): fixtures stay in conftest.py, helpers live here."""
