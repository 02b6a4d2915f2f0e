"""Prefect deployments of soraflow."""
