"""Prefect flows of soraflow.

A worker's flow run starts by importing this package: everything the process logs or prints is
redacted from here on (soraflow.redaction.install_redaction), as in the CLI.
"""

from soraflow.redaction import install_redaction

install_redaction()
