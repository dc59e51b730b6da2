"""Volume control for one watchlist: digest windows, a rate cap and quiet hours. Pure.

The outbox asks `plan_release` when a fresh alert may go out. "Now, alone" sends it as its own
message; a later time holds it in the list's open batch, and the whole batch goes out as ONE
digest message at that time. Holding only ever delays: nothing is dropped, and a batch is sent
(and retried) like any alert.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOLD_DIGEST = "digest"
HOLD_QUIET = "quiet_hours"
HOLD_RATE = "rate_limit"
_QUIET = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})(?:\s+(\S+))?\s*")
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smhdw])\s*")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily span of local time (it may cross midnight) during which alerts are held."""

    start: time
    end: time
    zone: str

    @property
    def spec(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone}"

    def end_after(self, moment: datetime) -> datetime | None:
        """When the quiet span containing `moment` ends (UTC); None when `moment` is not quiet.
        Local wall-clock times are used, so the end stays at 07:00 across DST changes."""
        tz = ZoneInfo(self.zone)
        local = moment.astimezone(tz)
        now = local.time().replace(tzinfo=None)
        end_day: date | None = None
        if self.start < self.end:
            end_day = local.date() if self.start <= now < self.end else None
        elif now >= self.start:
            end_day = local.date() + timedelta(days=1)
        elif now < self.end:
            end_day = local.date()
        if end_day is None:
            return None
        end = datetime.combine(end_day, self.end, tzinfo=tz).astimezone(UTC)
        return max(end, moment.astimezone(UTC))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `count` messages per `period_s` for one watchlist; the rest wait in a digest."""

    count: int
    period_s: float
    spec: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A watchlist's volume settings, as frozen into each alert's payload at match time."""

    digest_s: float | None = None
    quiet: QuietHours | None = None
    rate: RateLimit | None = None

    @classmethod
    def from_payload(cls, delivery: Mapping[str, Any] | None) -> Policy:
        """Read the payload's `delivery` entry. A value that no longer parses is ignored (the
        alert is then sent straight away) rather than blocking the alert forever."""
        if not delivery:
            return cls()
        digest = delivery.get("digest_s")
        digest_s = float(digest) if isinstance(digest, int | float) and digest > 0 else None
        quiet = _parsed_or_none(parse_quiet_hours, delivery.get("quiet_hours"))
        rate = _parsed_or_none(parse_rate_limit, delivery.get("rate_limit"))
        return cls(digest_s, quiet, rate)


@dataclass(frozen=True, slots=True)
class Release:
    """When an alert goes out, and why it waits (None: now, as its own message)."""

    at: datetime
    hold: str | None = None


def delivery_payload(
    digest_s: float | None, quiet_hours: str | None, rate_limit: str | None
) -> dict[str, Any] | None:
    """The `delivery` entry frozen into an alert payload; None when the list sets nothing."""
    entry = {"digest_s": digest_s, "quiet_hours": quiet_hours, "rate_limit": rate_limit}
    entry = {key: value for key, value in entry.items() if value}
    return entry or None


def parse_quiet_hours(text: str) -> QuietHours:
    """`22:00-07:00 Europe/Kyiv` (the zone defaults to UTC). Raises ValueError with the fix."""
    found = _QUIET.fullmatch(text)
    if not found:
        raise ValueError(f'"{text}" is not a time span (use e.g. "22:00-07:00 Europe/Kyiv")')
    h1, m1, h2, m2 = (int(found.group(i)) for i in range(1, 5))
    if max(h1, h2) > 23 or max(m1, m2) > 59:
        raise ValueError(f'"{text}": hours run 00-23 and minutes 00-59')
    if (h1, m1) == (h2, m2):
        raise ValueError(f'"{text}": start and end are the same time')
    zone = found.group(5) or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f'"{zone}" is not a known time zone (use an IANA name such as Europe/Kyiv)'
        ) from None
    return QuietHours(time(h1, m1), time(h2, m2), zone)


def parse_rate_limit(text: str) -> RateLimit:
    """`10/h`, `100/d`, `5/30m`. Raises ValueError with the fix."""
    found = _RATE.fullmatch(text)
    if not found or int(found.group(1)) < 1:
        raise ValueError(f'"{text}" is not a rate (use e.g. 10/h, 100/d or 5/30m)')
    period_s = float(found.group(2) or 1) * _UNITS_S[found.group(3)]
    if period_s <= 0:
        raise ValueError(f'"{text}": the period must be longer than zero')
    return RateLimit(int(found.group(1)), period_s, text.strip().replace(" ", ""))


def plan_release(
    policy: Policy,
    now: datetime,
    *,
    open_batch: Release | None,
    recent: Sequence[datetime],
) -> Release:
    """Decide when a fresh alert goes out.

    `open_batch` is the list's batch still waiting (it is joined, so one digest collects
    everything held); `recent` are the send times of the list's messages, for the rate cap.
    """
    if open_batch is not None and open_batch.at > now and open_batch.hold:
        return open_batch
    at, hold = now, None
    if policy.digest_s:
        at, hold = now + timedelta(seconds=policy.digest_s), HOLD_DIGEST
    elif policy.rate is not None:
        since = now - timedelta(seconds=policy.rate.period_s)
        window = sorted(moment for moment in recent if since < moment <= now)
        if len(window) >= policy.rate.count:
            oldest_to_expire = window[len(window) - policy.rate.count]
            at = oldest_to_expire + timedelta(seconds=policy.rate.period_s)
            hold = HOLD_RATE
    if policy.quiet is not None:
        quiet_end = policy.quiet.end_after(at)
        if quiet_end is not None:
            at, hold = quiet_end, hold or HOLD_QUIET
    return Release(at, hold)


def hold_note(hold: str | None, policy: Policy) -> str:
    """One line saying why a digest's stories were held, for the message."""
    if hold == HOLD_QUIET and policy.quiet is not None:
        return f"held during quiet hours ({policy.quiet.spec})"
    if hold == HOLD_RATE and policy.rate is not None:
        return f"held over the rate limit ({policy.rate.spec})"
    if hold == HOLD_DIGEST and policy.digest_s:
        return f"digest every {format_duration(policy.digest_s)}"
    return "held"


def _parsed_or_none(parse: Callable[[str], _T], value: object) -> _T | None:
    if not isinstance(value, str):
        return None
    try:
        return parse(value)
    except ValueError:
        return None


def format_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
