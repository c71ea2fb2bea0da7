"""Cap windows in local time, cap checks, and claim planning with splits at a kill cap."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.services.caps import (
    CapLimits,
    CapUsage,
    OpenAccrual,
    SkipReason,
    SplitPlan,
    cap_reached,
    cap_windows,
    kill_allowance,
    payout_cap_reached,
    plan_claim,
)

TOKYO = ZoneInfo("Asia/Tokyo")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
BERLIN = ZoneInfo("Europe/Berlin")
RAW_PER_KILL = 21 * 10**28


def accrual(accrual_id: int, kills: int, raw_per_kill: int = RAW_PER_KILL) -> OpenAccrual:
    return OpenAccrual(
        id=accrual_id, kills=kills, raw_per_kill=raw_per_kill, amount_raw=kills * raw_per_kill
    )


def test_windows_tokyo_day_before_utc() -> None:
    # 15:30 UTC on Tuesday 6 January is 00:30 on Wednesday 7 January in Tokyo.
    windows = cap_windows(datetime(2026, 1, 6, 15, 30, tzinfo=UTC), TOKYO)

    assert windows.day_start == datetime(2026, 1, 6, 15, 0, tzinfo=UTC)
    assert windows.week_start == datetime(2026, 1, 4, 15, 0, tzinfo=UTC)


def test_windows_sao_paulo_week_after_utc() -> None:
    # 02:30 UTC on Monday 12 January is still Sunday 23:30 in Sao Paulo.
    windows = cap_windows(datetime(2026, 1, 12, 2, 30, tzinfo=UTC), SAO_PAULO)

    assert windows.day_start == datetime(2026, 1, 11, 3, 0, tzinfo=UTC)
    assert windows.week_start == datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def test_windows_across_dst_change() -> None:
    # Berlin moves to summer time on Sunday 29 March 2026. The week began on the 23rd in
    # winter time (UTC+1), and the day starts in summer time (UTC+2) on the 30th.
    windows = cap_windows(datetime(2026, 3, 30, 12, tzinfo=UTC), BERLIN)

    assert windows.day_start == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert windows.week_start == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    sunday = cap_windows(datetime(2026, 3, 29, 12, tzinfo=UTC), BERLIN)
    assert sunday.day_start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert sunday.week_start == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)


def test_windows_need_aware_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cap_windows(datetime(2026, 1, 1), TOKYO)


@given(st.datetimes(timezones=st.sampled_from([TOKYO, SAO_PAULO, BERLIN, ZoneInfo("UTC")])))
def test_windows_contain_instant(at: datetime) -> None:
    zone = at.tzinfo
    assert isinstance(zone, ZoneInfo)
    windows = cap_windows(at, zone)

    local_day_start = windows.day_start.astimezone(zone)
    assert windows.week_start <= windows.day_start <= at
    assert local_day_start.date() == at.astimezone(zone).date()
    # Midnight itself, or the first minute after a DST change that skipped midnight.
    assert local_day_start.time() <= time(1, 0)
    assert windows.week_start.astimezone(zone).weekday() == 0


def test_payout_caps_zero_allows_nothing() -> None:
    limits = CapLimits(daily_payouts=0, weekly_payouts=3)

    assert payout_cap_reached(CapUsage(), limits) is SkipReason.DAILY_CAP


def test_payout_caps_count() -> None:
    limits = CapLimits(daily_payouts=1, weekly_payouts=3)

    assert payout_cap_reached(CapUsage(), limits) is None
    assert payout_cap_reached(CapUsage(payouts_today=1, payouts_this_week=1), limits) is (
        SkipReason.DAILY_CAP
    )
    assert payout_cap_reached(CapUsage(payouts_this_week=3), limits) is SkipReason.WEEKLY_CAP


def test_kill_caps_zero_means_no_limit() -> None:
    limits = CapLimits(daily_payouts=1, weekly_payouts=3)

    assert kill_allowance(CapUsage(kills_today=10**6), limits) is None


def test_kill_allowance_takes_tighter_window() -> None:
    limits = CapLimits(daily_payouts=5, weekly_payouts=5, daily_kills=10, weekly_kills=25)

    assert kill_allowance(CapUsage(kills_today=4, kills_this_week=4), limits) == 6
    assert kill_allowance(CapUsage(kills_today=4, kills_this_week=22), limits) == 3
    assert kill_allowance(CapUsage(kills_today=12, kills_this_week=12), limits) == 0
    assert cap_reached(CapUsage(kills_today=10, kills_this_week=10), limits) is (
        SkipReason.KILL_CAP
    )


def test_negative_cap_rejected() -> None:
    with pytest.raises(ValueError, match="daily_kills"):
        CapLimits(daily_payouts=1, weekly_payouts=1, daily_kills=-1)


def test_plan_without_limit_takes_all() -> None:
    plan = plan_claim([accrual(1, 3), accrual(2, 4)], None)

    assert plan is not None
    assert plan.whole_ids == (1, 2)
    assert plan.split is None
    assert plan.kills == 7
    assert plan.amount_raw == 7 * RAW_PER_KILL


def test_plan_splits_at_cap() -> None:
    plan = plan_claim([accrual(1, 3), accrual(2, 4), accrual(3, 1)], 5)

    assert plan is not None
    assert plan.whole_ids == (1,)
    assert plan.split == SplitPlan(accrual_id=2, kills_paid=2)
    assert plan.kills == 5
    assert plan.amount_raw == 5 * RAW_PER_KILL


def test_plan_exact_fit_needs_no_split() -> None:
    plan = plan_claim([accrual(1, 3), accrual(2, 2), accrual(3, 4)], 5)

    assert plan is not None
    assert plan.whole_ids == (1, 2)
    assert plan.split is None


def test_plan_nothing_when_allowance_zero() -> None:
    assert plan_claim([accrual(1, 3)], 0) is None
    assert plan_claim([], None) is None


def test_plan_never_splits_inexact_accrual() -> None:
    uneven = OpenAccrual(id=1, kills=3, raw_per_kill=10, amount_raw=31)

    assert plan_claim([uneven], 2) is None


@given(
    kills=st.lists(st.integers(1, 20), min_size=1, max_size=8),
    raw_per_kill=st.integers(1, 10**30),
    allowance=st.one_of(st.none(), st.integers(0, 60)),
)
def test_plan_pays_whole_kills_exactly(
    kills: list[int], raw_per_kill: int, allowance: int | None
) -> None:
    accruals = [accrual(i, k, raw_per_kill) for i, k in enumerate(kills, start=1)]
    plan = plan_claim(accruals, allowance)

    total_kills = sum(kills)
    if allowance == 0:
        assert plan is None
        return
    assert plan is not None
    expected_kills = total_kills if allowance is None else min(allowance, total_kills)
    assert plan.kills == expected_kills
    assert plan.amount_raw == plan.kills * raw_per_kill
    whole_kills = sum(kills[i - 1] for i in plan.whole_ids)
    split_kills = 0 if plan.split is None else plan.split.kills_paid
    assert whole_kills + split_kills == plan.kills
    # Oldest first: the claimed accruals are a prefix of the list.
    assert list(plan.whole_ids) == list(range(1, len(plan.whole_ids) + 1))
