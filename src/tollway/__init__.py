"""Tollway: usage-based billing for APIs."""

__version__ = "0.1.0"
