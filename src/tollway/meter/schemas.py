from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tollway.kit.fields import Identifier
from tollway.meter.aggregations import REGISTRY

PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{1,100}$")

if TYPE_CHECKING:
    Aggregation = str
else:  # the registry's names, validated and documented (OpenAPI enum) as a Literal
    Aggregation = Literal[tuple(REGISTRY)]
FilterOp = Literal["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "exists"]
Scalar = str | int | float | bool
MAX_LIST_VALUES = 10_000


def check_path(path: str) -> str:
    """A dotted path into ``properties``: segments of letters, digits, '_' and '-'."""
    if not isinstance(path, str) or not path:
        raise ValueError('must be a dotted property path such as "usage.bytes"')
    parts = path.split(".")
    if len(parts) > 10 or not all(PATH_SEGMENT.match(p) for p in parts):
        raise ValueError(
            "must be a dotted property path such as \"usage.bytes\" (segments of letters, digits, '_' or '-')"
        )
    return path


class MeterFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property: str
    op: FilterOp
    value: Any = None

    @field_validator("property")
    @classmethod
    def _path(cls, v: str) -> str:
        return check_path(v)

    @field_validator("value")
    @classmethod
    def _list_length(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) > MAX_LIST_VALUES:
            raise ValueError(f"takes at most {MAX_LIST_VALUES} values")
        return v

    @model_validator(mode="after")
    def _value_fits_op(self) -> MeterFilter:
        v = self.value
        if self.op in ("in", "not_in"):
            if not isinstance(v, list) or not v or not all(isinstance(x, Scalar) for x in v):
                raise ValueError(f"'{self.op}' needs a non-empty array of strings, numbers or booleans as value")
        elif self.op == "exists":
            if v is None:
                self.value = True
            elif not isinstance(v, bool):
                raise ValueError("'exists' takes true or false as value (default true)")
        elif self.op in ("gt", "gte", "lt", "lte"):
            if isinstance(v, bool) or not isinstance(v, int | float | str):
                raise ValueError(f"'{self.op}' needs a number (or a string, compared as text) as value")
        elif not isinstance(v, Scalar):
            raise ValueError(f"'{self.op}' needs a string, number or boolean as value")
        return self


class MeterBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)


class MeterCreate(MeterBase):
    key: Identifier
    event_type: str = Field(min_length=1, max_length=200)
    aggregation: Aggregation
    value_property: str | None = None
    filters: list[MeterFilter] = Field(default_factory=list, max_length=50)
    group_by: list[str] = Field(default_factory=list, max_length=10)

    @field_validator("value_property")
    @classmethod
    def _vp(cls, v: str | None) -> str | None:
        return None if v is None else check_path(v)

    @field_validator("group_by")
    @classmethod
    def _gb(cls, v: list[str]) -> list[str]:
        for p in v:
            check_path(p)
        if len(set(v)) != len(v):
            raise ValueError("group_by properties must be distinct")
        return v

    @model_validator(mode="after")
    def _definition(self) -> MeterCreate:
        if REGISTRY[self.aggregation].value_kind != "none" and not self.value_property:
            raise ValueError(f"value_property is required for aggregation '{self.aggregation}'")
        return self


class MeterUpdate(MeterBase):
    event_type: str | None = Field(default=None, min_length=1, max_length=200)
    aggregation: Aggregation | None = None
    value_property: str | None = None
    filters: list[MeterFilter] | None = Field(default=None, max_length=50)
    group_by: list[str] | None = Field(default=None, max_length=10)

    @field_validator("value_property")
    @classmethod
    def _vp(cls, v: str | None) -> str | None:
        return None if v is None else check_path(v)

    @field_validator("group_by")
    @classmethod
    def _gb(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for p in v:
                check_path(p)
            if len(set(v)) != len(v):
                raise ValueError("group_by properties must be distinct")
        return v


class RollupState(BaseModel):
    """The build of the meter's hourly rollups (*addition*). ``building`` after the meter was
    created or changed while events existed: the worker builds them in the background, a chunk
    of customers at a time, and usage is read from the raw events (exact, slower) until ``ready``."""

    status: Literal["ready", "building"]
    customers_built: int
    customers_total: int | None


class Meter(BaseModel):
    key: str
    name: str | None
    description: str | None
    event_type: str
    aggregation: Aggregation
    value_property: str | None
    filters: list[MeterFilter]
    group_by: list[str]
    rollups: RollupState
    created_at: datetime
    updated_at: datetime


class UsageRow(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    value: str | None
    groups: dict[str, str | None]


class Usage(BaseModel):
    meter: str
    customer: str | None
    tz: str
    window: str | None
    data: list[UsageRow]
