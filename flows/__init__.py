"""Prefect flows of soraflow."""
