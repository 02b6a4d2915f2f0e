"""Automations that react to the model watch's events."""
