"""Kept for the model modules that import ``utcnow`` from here; the one definition is
:func:`tollway.kit.time.utcnow`, which new code imports directly."""

from tollway.kit.time import utcnow

__all__ = ["utcnow"]
