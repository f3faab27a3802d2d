"""When a user's job mail may go out: quiet hours and digests, in the user's time zone.

Pure functions of (preferences, statuses, now), so the rules are tested without a clock.
- Quiet hours `quiet_start`-`quiet_end` (local "HH:MM"; may span midnight): job mail is
  held until they end, then sent as one summary. Statuses in `quiet_breakthrough` (ERROR,
  say) go out at once.
- A digest (`digest_minutes` N > 0): mail is held until the end of the current N-minute
  window of the local day (1440: one mail a day, at local midnight), then summarised.
Both at once: held until the later of the two. Group milestones are never held (they are
one message already), and channels (phone, chat) are not mail: they are never held.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..domain import User

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
DAY_MINUTES = 1440


def zone(name: str | None) -> ZoneInfo | timezone:
    if not name:
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _minutes(hhmm: str) -> int:
    m = HHMM.match(hhmm)
    if m is None:
        raise ValueError(f"not a time of day (HH:MM): {hhmm!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


def _local(now_ms: int, tz: ZoneInfo | timezone) -> datetime:
    return datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc).astimezone(tz)


def _ms(dt: datetime) -> int:
    return int(dt.astimezone(timezone.utc).timestamp() * 1000)


def quiet_until(user: User, now_ms: int) -> int | None:
    """The end of the quiet hours `now` falls in (epoch ms), or None outside them."""
    if not user.quiet_start or not user.quiet_end:
        return None
    start, end = _minutes(user.quiet_start), _minutes(user.quiet_end)
    if start == end:
        return None
    tz = zone(user.time_zone)
    local = _local(now_ms, tz)
    minute = local.hour * 60 + local.minute
    inside = start <= minute < end if start < end else (minute >= start or minute < end)
    if not inside:
        return None
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    day = midnight if minute < end else midnight + timedelta(days=1)
    # Wall-clock arithmetic, then the zone: on a DST day quiet hours still end at local `end`.
    return _ms((day + timedelta(minutes=end)).replace(tzinfo=tz))


def digest_until(user: User, now_ms: int) -> int | None:
    """The end of the current digest window (epoch ms), or None without a digest."""
    n = user.digest_minutes
    if not n or n <= 0:
        return None
    n = min(n, DAY_MINUTES)
    tz = zone(user.time_zone)
    local = _local(now_ms, tz)
    minute = local.hour * 60 + local.minute
    boundary = (minute // n + 1) * n
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).replace(tzinfo=None)
    release = midnight + timedelta(minutes=min(boundary, DAY_MINUTES))
    return _ms(release.replace(tzinfo=tz))


def hold_until(user: User, statuses: Sequence[str], now_ms: int) -> int | None:
    """Until when a job mail about `statuses` waits (epoch ms), or None to send it now."""
    quiet = quiet_until(user, now_ms)
    if quiet is not None and any(s in user.quiet_breakthrough for s in statuses):
        quiet = None
    digest = digest_until(user, now_ms)
    times = [t for t in (quiet, digest) if t is not None]
    return max(times) if times else None
