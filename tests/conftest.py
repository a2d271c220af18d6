"""Pytest configuration shared by all tests. Helpers live in ``tests.support``."""

pytest_plugins = ["tests.postgres"]  # the postgres_server / postgres_url fixtures
