"""Pytest configuration shared by all tests. Helpers live in ``tests.support``."""
