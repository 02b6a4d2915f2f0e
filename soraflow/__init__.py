"""soraflow: turn a storyboard into a film with Sora video models.

The core package: no Prefect imports here (flows/ and tasks/ add orchestration on top).
"""

__version__ = "0.1.0"
