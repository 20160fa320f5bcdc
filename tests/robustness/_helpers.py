"""Kept for tests that import from here: the helpers live in ``tests.factories``. New tests
import ``tests.factories``."""

from tests.factories import JSON, nested, problem

__all__ = ["JSON", "nested", "problem"]
