"""Charge definitions: the contract's charge JSON as frozen dataclasses, and their validation.

A :class:`Charge` mirrors one entry of a plan's ``charges`` list.  Build one
from the contract JSON with :func:`charge_from_dict`, which raises
:class:`~tollway.pricing.errors.PricingValidationError` listing every problem
as ``(field, message)`` pairs; or build one in code and check it with
:func:`validate_charge`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from tollway.kit.fields import field_path
from tollway.pricing._fields import Errors, read_decimal, read_mapping, read_str
from tollway.pricing.errors import PricingValidationError

__all__ = [
    "MODEL_NAMES",
    "MODEL_PARAMS",
    "TIERED_MODELS",
    "Charge",
    "Tier",
    "charge_from_dict",
    "validate_charge",
]

MODEL_NAMES: Final = ("flat", "package", "graduated", "volume", "stairstep", "percentage", "bundle")
"""The charge models of the contract, in the order the docs present them."""

TIERED_MODELS: Final = frozenset({"graduated", "volume", "stairstep"})

MODEL_PARAMS: Final[Mapping[str, frozenset[str]]] = {
    "flat": frozenset({"unit_price"}),
    "package": frozenset({"package_size", "package_price"}),
    "graduated": frozenset({"tiers"}),
    "volume": frozenset({"tiers"}),
    "stairstep": frozenset({"tiers"}),
    "percentage": frozenset({"rate", "fixed_fee_per_event", "min_per_event", "max_per_event"}),
    "bundle": frozenset({"bundle_size", "bundle_price", "included_bundles"}),
}
"""The price parameters each model reads (``free_units`` is common to all)."""

_ALL_PARAMS: Final = frozenset().union(*MODEL_PARAMS.values())
_DECIMAL_PARAMS: Final = _ALL_PARAMS - {"tiers", "included_bundles"}
_DESCRIPTIVE_KEYS: Final = frozenset({"code", "model", "meter", "product", "name", "description"})
_CHARGE_KEYS: Final = _DESCRIPTIVE_KEYS | _ALL_PARAMS | {"free_units", "dimension", "dimension_prices"}
_OVERRIDE_KEYS: Final = _ALL_PARAMS | {"free_units"}
_TIER_KEYS: Final = frozenset({"up_to", "unit_price", "flat_fee"})
_MAX_CODE_LENGTH: Final = 200

ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier: units above the previous tier's ``up_to`` up to and including this ``up_to``.

    ``up_to=None`` is the open-ended last tier.  ``flat_fee`` is added once when
    the tier is reached (graduated), or is the whole price (stairstep).
    """

    up_to: Decimal | None
    unit_price: Decimal = ZERO
    flat_fee: Decimal = ZERO


@dataclass(frozen=True)
class Charge:
    """A usage charge of a plan, as in the contract's ``charges`` entries.

    Only the parameters of ``model`` may be set (see :data:`MODEL_PARAMS`).
    ``dimension_prices`` maps a dimension value to a complete :class:`Charge`
    for that value (the charge's own parameters overlaid with the value's); use
    :meth:`for_dimension` rather than reading it directly.
    """

    code: str
    model: str
    meter: str | None = None
    product: str | None = None
    name: str | None = None
    unit_price: Decimal | None = None
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    rate: Decimal | None = None
    fixed_fee_per_event: Decimal | None = None
    min_per_event: Decimal | None = None
    max_per_event: Decimal | None = None
    bundle_size: Decimal | None = None
    bundle_price: Decimal | None = None
    included_bundles: int | None = None
    free_units: Decimal = ZERO
    dimension: str | None = None
    dimension_prices: Mapping[str, Charge] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What an invoice calls this charge: its ``name``, else its ``code``."""
        return self.name or self.code

    @property
    def needs_event_values(self) -> bool:
        """True for a percentage charge that must see each event's value (fixed fee, min or max)."""
        return self.model == "percentage" and (
            self.fixed_fee_per_event is not None or self.min_per_event is not None or self.max_per_event is not None
        )

    def base(self) -> Charge:
        """This charge without its per-dimension prices."""
        if self.dimension is None and not self.dimension_prices:
            return self
        return dataclasses.replace(self, dimension=None, dimension_prices={})

    def for_dimension(self, value: str) -> Charge:
        """The charge priced for one dimension value: its own entry, or the charge's params."""
        return self.dimension_prices.get(value) or self.base()

    def with_overrides(self, overrides: Mapping[str, object]) -> Charge:
        """A copy of :meth:`base` with some price parameters replaced (used for dimension prices)."""
        return dataclasses.replace(self.base(), **overrides)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Validation of a Charge object
# --------------------------------------------------------------------------------------------


def _non_negative(value: Decimal | None, where: str, errors: Errors) -> None:
    if value is not None and value < 0:
        errors.append((where, "must not be negative"))


def _positive(value: Decimal | None, where: str, errors: Errors) -> None:
    if value is not None and value <= 0:
        errors.append((where, "must be greater than 0"))


def _required(charge: Charge, name: str, prefix: str, errors: Errors) -> None:
    if getattr(charge, name) is None:
        errors.append((field_path(prefix, name), f"is required for the '{charge.model}' model"))


def _validate_tiers(charge: Charge, prefix: str, errors: Errors) -> None:
    where = field_path(prefix, "tiers")
    tiers = charge.tiers
    if not tiers:
        errors.append((where, f"at least one tier is required for the '{charge.model}' model"))
        return
    previous: Decimal = ZERO
    last = len(tiers) - 1
    for i, tier in enumerate(tiers):
        tier_at = field_path(where, i)
        if tier.up_to is None:
            if i != last:
                errors.append((field_path(tier_at, "up_to"), "only the last tier may be open-ended (null)"))
        else:
            if tier.up_to <= previous:
                message = "must be greater than 0" if i == 0 else "tiers must be in ascending order of up_to"
                errors.append((field_path(tier_at, "up_to"), message))
            else:
                previous = tier.up_to
        _non_negative(tier.unit_price, field_path(tier_at, "unit_price"), errors)
        _non_negative(tier.flat_fee, field_path(tier_at, "flat_fee"), errors)
        if charge.model == "stairstep" and tier.unit_price != 0:
            errors.append((field_path(tier_at, "unit_price"), "stairstep tiers carry only a flat_fee"))
    if charge.model in {"graduated", "volume"} and tiers[last].up_to is not None:
        errors.append(
            (
                field_path(field_path(where, last), "up_to"),
                f"the last tier of a '{charge.model}' charge must be open-ended (up_to null)",
            )
        )


def validate_charge(charge: Charge, prefix: str = "") -> list[tuple[str, str]]:
    """Every problem with ``charge`` as ``(field, message)`` pairs; empty when it is valid.

    ``prefix`` is prepended to field names: ``validate_charge(c, "charges[0]")``
    reports ``"charges[0].tiers[1].up_to"``.
    """
    errors: Errors = []
    if not isinstance(charge.code, str) or not charge.code.strip():
        errors.append((field_path(prefix, "code"), "is required"))
    elif len(charge.code) > _MAX_CODE_LENGTH:
        errors.append((field_path(prefix, "code"), f"must be at most {_MAX_CODE_LENGTH} characters"))
    if charge.model not in MODEL_PARAMS:
        expected = ", ".join(MODEL_NAMES)
        errors.append((field_path(prefix, "model"), f"unknown model {charge.model!r}; expected one of {expected}"))
        return errors
    own: Errors = []
    _validate_params(charge, "", own)
    errors.extend((_under(prefix, f), m) for f, m in own)
    if charge.dimension_prices and not charge.dimension:
        errors.append((field_path(prefix, "dimension"), "is required when dimension_prices is given"))
    if charge.dimension is not None and not charge.dimension.strip():
        errors.append((field_path(prefix, "dimension"), "must not be empty"))
    if charge.dimension is not None and charge.model == "bundle":
        errors.append((field_path(prefix, "dimension"), "bundle charges cannot be priced per dimension"))
    inherited = {f for f, _ in own}
    for value, sub in charge.dimension_prices.items():
        sub_prefix = field_path(field_path(prefix, "dimension_prices"), value)
        if sub.model != charge.model:
            errors.append((field_path(sub_prefix, "model"), "must be the charge's own model"))
            continue
        sub_errors: Errors = []
        _validate_params(sub, "", sub_errors)
        # A problem the value merely inherits from the charge's own params is reported once, there.
        errors.extend((_under(sub_prefix, f), m) for f, m in sub_errors if f not in inherited)
    return errors


def _under(prefix: str, relative: str) -> str:
    """Join a relative field path (``"tiers[1].up_to"``) under ``prefix``."""
    if not prefix:
        return relative
    return f"{prefix}{relative}" if relative.startswith("[") else f"{prefix}.{relative}"


def _validate_params(charge: Charge, prefix: str, errors: Errors) -> None:
    model = charge.model
    used = MODEL_PARAMS[model]
    for name in sorted(_ALL_PARAMS - used):
        value = getattr(charge, name)
        if value is not None and value != ():
            errors.append((field_path(prefix, name), f"is not used by the '{model}' model"))
    if charge.free_units is None or charge.free_units < 0:
        errors.append((field_path(prefix, "free_units"), "must not be negative"))
    if model == "flat":
        _required(charge, "unit_price", prefix, errors)
        _non_negative(charge.unit_price, field_path(prefix, "unit_price"), errors)
    elif model == "package":
        _required(charge, "package_size", prefix, errors)
        _required(charge, "package_price", prefix, errors)
        _positive(charge.package_size, field_path(prefix, "package_size"), errors)
        _non_negative(charge.package_price, field_path(prefix, "package_price"), errors)
    elif model in TIERED_MODELS:
        _validate_tiers(charge, prefix, errors)
    elif model == "percentage":
        _required(charge, "rate", prefix, errors)
        if charge.rate is not None and not (0 <= charge.rate <= 100):
            errors.append((field_path(prefix, "rate"), "must be a percentage between 0 and 100"))
        for name in ("fixed_fee_per_event", "min_per_event", "max_per_event"):
            _non_negative(getattr(charge, name), field_path(prefix, name), errors)
        if (
            charge.min_per_event is not None
            and charge.max_per_event is not None
            and charge.min_per_event > charge.max_per_event
        ):
            errors.append((field_path(prefix, "max_per_event"), "must not be less than min_per_event"))
    elif model == "bundle":
        _required(charge, "bundle_size", prefix, errors)
        _required(charge, "bundle_price", prefix, errors)
        _positive(charge.bundle_size, field_path(prefix, "bundle_size"), errors)
        _non_negative(charge.bundle_price, field_path(prefix, "bundle_price"), errors)
        if charge.included_bundles is not None and charge.included_bundles < 0:
            errors.append((field_path(prefix, "included_bundles"), "must not be negative"))


# --------------------------------------------------------------------------------------------
# Parsing the contract JSON
# --------------------------------------------------------------------------------------------


def _read_tiers(raw: object, where: str, errors: Errors) -> tuple[Tier, ...]:
    if not isinstance(raw, list | tuple):
        errors.append((where, "must be a list of tiers"))
        return ()
    tiers: list[Tier] = []
    for i, item in enumerate(raw):
        tier_at = field_path(where, i)
        data = read_mapping(item, tier_at, errors)
        if data is None:
            continue
        for key in data:
            if key not in _TIER_KEYS:
                errors.append((field_path(tier_at, key), "unknown field"))
        if "up_to" not in data:
            errors.append((field_path(tier_at, "up_to"), "is required (null for the open-ended last tier)"))
        up_to = read_decimal(data, "up_to", tier_at, errors)
        unit_price = read_decimal(data, "unit_price", tier_at, errors)
        flat_fee = read_decimal(data, "flat_fee", tier_at, errors)
        tiers.append(Tier(up_to=up_to, unit_price=unit_price or ZERO, flat_fee=flat_fee or ZERO))
    return tuple(tiers)


def _read_included_bundles(data: Mapping[str, object], prefix: str, errors: Errors) -> int | None:
    value = read_decimal(data, "included_bundles", prefix, errors, max_places=None)
    if value is None:
        return None
    if value != value.to_integral_value():
        errors.append((field_path(prefix, "included_bundles"), "must be a whole number of bundles"))
        return None
    return int(value)


def _read_params(data: Mapping[str, object], prefix: str, errors: Errors) -> dict[str, object]:
    """The price parameters present (non-null) in ``data``, typed."""
    params: dict[str, object] = {}
    for name in sorted(_DECIMAL_PARAMS | {"free_units"}):
        if data.get(name) is not None:
            value = read_decimal(data, name, prefix, errors)
            if value is not None:
                params[name] = value
    if data.get("tiers") is not None:
        params["tiers"] = _read_tiers(data["tiers"], field_path(prefix, "tiers"), errors)
    if data.get("included_bundles") is not None:
        bundles = _read_included_bundles(data, prefix, errors)
        if bundles is not None:
            params["included_bundles"] = bundles
    return params


def charge_from_dict(data: Mapping[str, object], prefix: str = "", *, ignore_unknown: bool = False) -> Charge:
    """Build a :class:`Charge` from the contract's charge JSON (decimal strings, ints, nulls).

    Raises :class:`PricingValidationError` with every problem found, field
    names prefixed with ``prefix`` (e.g. ``"charges[0]"``).  Unknown keys are
    errors unless ``ignore_unknown``; ``null`` is the same as absent.
    """
    errors: Errors = []
    mapping = read_mapping(data, prefix or "charge", errors)
    if mapping is None:
        raise PricingValidationError(errors)
    if not ignore_unknown:
        for key in mapping:
            if key not in _CHARGE_KEYS:
                errors.append((field_path(prefix, key), "unknown field"))
    code = read_str(mapping, "code", prefix, errors)
    model = read_str(mapping, "model", prefix, errors)
    if code is None and field_path(prefix, "code") not in {f for f, _ in errors}:
        errors.append((field_path(prefix, "code"), "is required"))
    if model is None:
        if field_path(prefix, "model") not in {f for f, _ in errors}:
            errors.append((field_path(prefix, "model"), "is required"))
        raise PricingValidationError(errors)
    params = _read_params(mapping, prefix, errors)
    free_units = params.pop("free_units", ZERO)
    assert isinstance(free_units, Decimal)
    charge = Charge(
        code=code or "",
        model=model,
        meter=read_str(mapping, "meter", prefix, errors),
        product=read_str(mapping, "product", prefix, errors),
        name=read_str(mapping, "name", prefix, errors),
        free_units=free_units,
        dimension=read_str(mapping, "dimension", prefix, errors),
        **params,  # type: ignore[arg-type]
    )
    raw_dims = mapping.get("dimension_prices")
    if raw_dims is not None:
        dims_at = field_path(prefix, "dimension_prices")
        dims = read_mapping(raw_dims, dims_at, errors)
        overrides: dict[str, Charge] = {}
        for value, raw in (dims or {}).items():
            value_at = field_path(dims_at, value)
            sub = read_mapping(raw, value_at, errors)
            if sub is None:
                continue
            for key in sub:
                if key not in _OVERRIDE_KEYS:
                    errors.append((field_path(value_at, key), "unknown field or not a price parameter"))
            sub_params = _read_params(sub, value_at, errors)
            overrides[value] = charge.with_overrides(sub_params)
        charge = dataclasses.replace(charge, dimension_prices=overrides)
    if not errors:
        errors.extend(validate_charge(charge, prefix))
    else:
        # Report semantic problems too, but not twice for a field that already failed to parse.
        seen = {f for f, _ in errors}
        errors.extend((f, m) for f, m in validate_charge(charge, prefix) if f not in seen and not _is_missing(f, seen))
    if errors:
        raise PricingValidationError(errors)
    return charge


def _is_missing(where: str, failed: set[str]) -> bool:
    """True when ``where`` is a field that failed to parse (so 'is required' would be noise)."""
    return any(where == f or where.startswith(f + ".") or where.startswith(f + "[") for f in failed)
