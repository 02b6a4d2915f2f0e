"""Deployments: prefect.yaml, bootstrap, a real Prefect server with process workers."""
