"""Pytest configuration shared by all tests. Helpers live in ``tests.support``; the PostgreSQL
fixtures in ``tests.pg`` (imported by the modules that use them)."""
