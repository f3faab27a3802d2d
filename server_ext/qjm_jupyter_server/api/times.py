"""Epoch milliseconds (what the services keep) <-> ISO 8601 strings (what the API shows).

One place for the conversion so every response spells time the same way: UTC,
millisecond precision and a `Z` (`2026-01-01T00:00:00.000Z`), which the Lab panel's
`Date.parse` and Python's `datetime.fromisoformat` both read.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer, WithJsonSchema

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ms_to_iso(ms: int | None) -> str | None:
    """`None` passes through, so optional record fields map one to one."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return f"{_second_to_iso(seconds)}.{millis:03d}Z"


@functools.lru_cache(maxsize=8192)
def _second_to_iso(seconds: int) -> str:
    """The date and time of one second. A job list shows several times per job, and the
    times of a page cluster in few seconds (jobs registered or polled together), so
    remembering recent seconds takes date arithmetic off most of a listing's fields."""
    # timedelta arithmetic, not fromtimestamp(): it has no platform limits before 1970.
    dt = _EPOCH + timedelta(seconds=seconds)
    # Spelled out rather than strftime: glibc's %Y does not zero-pad years below 1000.
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"


def dt_to_ms(value: datetime) -> int:
    """Naive datetimes are taken as UTC: clients that drop the offset almost always mean it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def iso_to_ms(text: str) -> int:
    """Parse an ISO 8601 string (with `Z`, an offset, or none = UTC); raises ValueError."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return dt_to_ms(datetime.fromisoformat(text))


def _in_utc(value: datetime) -> datetime:
    """Aware and in UTC, or a validation error when UTC falls outside years 1..9999
    (`0001-01-01T00:00:00+01:00` parses, but could never be shown back)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("date-time is out of range once converted to UTC") from None


# A request field taking an ISO 8601 date-time (an offset, `Z`, or none = UTC).
UtcDateTime = Annotated[datetime, AfterValidator(_in_utc)]

# A response field holding epoch ms that goes out as our ISO string; the OpenAPI
# document shows it as a date-time string.
IsoTime = Annotated[
    int,
    PlainSerializer(ms_to_iso, return_type=str, when_used="always"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
