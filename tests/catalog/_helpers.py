"""Kept for tests that import from here: the factories live in ``tests.factories`` (``problem``
here is its ``problem_fields``). New tests import ``tests.factories``."""

from tests.factories import AMBERFLO_CHARGE, create_bundle, create_meter, create_plan, create_product, plan_body
from tests.factories import problem_fields as problem

__all__ = ["AMBERFLO_CHARGE", "create_bundle", "create_meter", "create_plan", "create_product", "plan_body", "problem"]
