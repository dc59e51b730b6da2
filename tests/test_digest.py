"""Volume policy as pure functions: parsing, quiet-hour ends (midnight and DST), release plans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.digest import (
    HOLD_DIGEST,
    HOLD_QUIET,
    HOLD_RATE,
    Policy,
    Release,
    delivery_payload,
    hold_note,
    parse_quiet_hours,
    parse_rate_limit,
    plan_release,
)

NOW = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
KYIV = parse_quiet_hours("22:00-07:00 Europe/Kyiv")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_parse_quiet_hours_and_rate_limits() -> None:
    assert KYIV.spec == "22:00-07:00 Europe/Kyiv"
    assert parse_quiet_hours("1:30 - 6:00").zone == "UTC"
    assert parse_rate_limit("10/h").count == 10 and parse_rate_limit("10/h").period_s == 3600
    assert parse_rate_limit("5 / 30m").period_s == 1800 and parse_rate_limit("100/d").count == 100


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("22-07", "not a time span"),
        ("25:00-07:00", "hours run 00-23"),
        ("07:00-07:00 UTC", "the same time"),
        ("22:00-07:00 Europe/Atlantis", "not a known time zone"),
        ("22:00-07:00 ../etc/passwd", "not a known time zone"),
    ],
)
def test_bad_quiet_hours_say_what_to_write(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_quiet_hours(text)


@pytest.mark.parametrize("text", ["ten per hour", "0/h", "10/", "10/fortnight", "10/0h"])
def test_bad_rate_limits_say_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match=r"rate|period"):
        parse_rate_limit(text)


def test_quiet_span_across_midnight_in_local_time() -> None:
    # Kyiv is UTC+2 in January.
    assert KYIV.end_after(utc(2024, 1, 15, 19, 59)) is None  # 21:59
    assert KYIV.end_after(utc(2024, 1, 15, 20, 0)) == utc(2024, 1, 16, 5, 0)  # 22:00 → 07:00
    assert KYIV.end_after(utc(2024, 1, 16, 4, 59)) == utc(2024, 1, 16, 5, 0)  # 06:59
    assert KYIV.end_after(utc(2024, 1, 16, 5, 0)) is None  # 07:00 sharp: awake
    day = parse_quiet_hours("12:00-13:00 UTC")
    assert day.end_after(utc(2024, 1, 15, 12, 30)) == utc(2024, 1, 15, 13, 0)
    assert day.end_after(utc(2024, 1, 15, 13, 30)) is None


def test_quiet_end_follows_the_wall_clock_across_dst() -> None:
    # Night of 30→31 March 2024: Kyiv moves from UTC+2 to UTC+3; 07:00 local is 04:00 UTC.
    assert KYIV.end_after(utc(2024, 3, 30, 21, 0)) == utc(2024, 3, 31, 4, 0)
    # And back on 27 October: 07:00 local is 05:00 UTC again.
    assert KYIV.end_after(utc(2024, 10, 26, 20, 0)) == utc(2024, 10, 27, 5, 0)


def test_plan_release() -> None:
    none = Policy()
    assert plan_release(none, NOW, open_batch=None, recent=()) == Release(NOW)
    hourly = Policy(digest_s=3600)
    assert plan_release(hourly, NOW, open_batch=None, recent=()) == Release(
        NOW + timedelta(hours=1), HOLD_DIGEST
    )
    waiting = Release(NOW + timedelta(minutes=5), HOLD_QUIET)
    assert plan_release(none, NOW, open_batch=waiting, recent=()) == waiting  # join the batch
    past = Release(NOW - timedelta(minutes=5), HOLD_QUIET)
    assert plan_release(none, NOW, open_batch=past, recent=()) == Release(NOW)


def test_rate_cap_waits_for_the_oldest_message_to_age_out() -> None:
    capped = Policy(rate=parse_rate_limit("2/h"))
    sent = [NOW - timedelta(minutes=50), NOW - timedelta(minutes=10)]
    assert plan_release(capped, NOW, open_batch=None, recent=sent[1:]) == Release(NOW)
    assert plan_release(capped, NOW, open_batch=None, recent=sent) == Release(
        NOW + timedelta(minutes=10), HOLD_RATE
    )
    older = [NOW - timedelta(minutes=70), *sent[1:]]  # one is already out of the window
    assert plan_release(capped, NOW, open_batch=None, recent=older) == Release(NOW)


def test_a_digest_ending_in_quiet_hours_waits_for_the_morning() -> None:
    policy = Policy(digest_s=3600, quiet=KYIV)
    evening = utc(2024, 1, 15, 19, 30)  # 21:30 in Kyiv; the window would end at 22:30
    assert plan_release(policy, evening, open_batch=None, recent=()) == Release(
        utc(2024, 1, 16, 5, 0), HOLD_DIGEST
    )
    night = Policy(quiet=KYIV)
    assert plan_release(night, utc(2024, 1, 15, 23, 0), open_batch=None, recent=()) == Release(
        utc(2024, 1, 16, 5, 0), HOLD_QUIET
    )


def test_policy_round_trips_through_the_payload_and_tolerates_junk() -> None:
    frozen = delivery_payload(3600.0, "22:00-07:00 Europe/Kyiv", "10/h")
    policy = Policy.from_payload(frozen)
    assert policy.digest_s == 3600 and policy.quiet == KYIV and policy.rate is not None
    assert delivery_payload(None, None, None) is None
    assert Policy.from_payload({"quiet_hours": "garbage", "rate_limit": 7}) == Policy()
    assert hold_note(HOLD_QUIET, policy) == "held during quiet hours (22:00-07:00 Europe/Kyiv)"
    assert hold_note(HOLD_RATE, policy) == "held over the rate limit (10/h)"
    assert hold_note(HOLD_DIGEST, policy) == "digest every 1h"
    assert hold_note(None, Policy()) == "held"
