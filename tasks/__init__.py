"""Prefect tasks of soraflow."""
