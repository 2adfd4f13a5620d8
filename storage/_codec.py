"""Small conversions shared by the stores: JSON, timestamps, integers, UUIDs."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from psycopg.types.json import Jsonb

from engine.records import iso


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    return json.dumps(value, default=json_default, separators=(",", ":"))


def jsonb(value: Any) -> Jsonb:
    return Jsonb(value, dumps=dumps)


def to_int(value: Decimal | int | None) -> int | None:
    return None if value is None else int(value)
