"""ETA and trouble flags from synthetic BatchSample histories: steady and changing rates, zero progress,
no samples yet, one sample, at risk, stalled (in progress and finalizing), failing; the flag filter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.template import Context, Template
from django.utils import timezone

from batches.index.store import upsert_batches
from batches.models import BatchRecord, BatchSample
from batches.index import flags
from batches.oversight import eta
from batches.upstream import Batch

pytestmark = pytest.mark.django_db

T0 = 1_790_000_000
MIN = 60


def dt(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=UTC)


def record(batch_id: str, *, status="in_progress", total=1000, completed=0, failed=0, seen=None, project="default",
           in_progress_at=T0, finalizing_at=None, expires_at=T0 + 24 * 3600) -> BatchRecord:
    data = {
        "id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "file-1",
        "completion_window": "24h", "status": status, "created_at": T0 - 5 * MIN, "in_progress_at": in_progress_at,
        "finalizing_at": finalizing_at, "expires_at": expires_at, "model": "gpt-4o-mini",
        "request_counts": {"total": total, "completed": completed, "failed": failed},
    }
    upsert_batches(project, [Batch.from_api(data)], now=dt(seen if seen is not None else T0))
    return BatchRecord.objects.get(project=project, batch_id=batch_id)


def samples(batch_id: str, points: list[tuple[float, int]], *, status="in_progress", total=1000, project="default") -> None:
    BatchSample.objects.bulk_create(
        BatchSample(project=project, batch_id=batch_id, taken_at=dt(at), status=status, total_requests=total, completed_requests=done)
        for at, done in points
    )


def oversight(rec: BatchRecord, now: float) -> eta.Oversight:
    return flags.oversight_for(rec.project, [rec], now)[rec.batch_id]


def observed(completed: int, now: float, points: list[tuple[float, int]], **fields) -> eta.Oversight:
    """The oversight at ``now`` of batch "b": sampled at ``points``, last seen (now) with ``completed`` done."""
    rec = record("b", completed=completed, seen=now, **fields)
    samples("b", points)
    return oversight(rec, now)


def test_a_steady_batch_gets_remaining_divided_by_its_rate():
    info = observed(300, T0 + 15 * MIN, [(T0 + 5 * MIN, 100), (T0 + 10 * MIN, 200)])
    assert info.rate_per_minute == pytest.approx(20.0)
    assert info.eta_at == T0 + 15 * MIN + 35 * MIN
    assert info.remaining == 700 and info.flags == []
    assert "700 requests left at 20.0 a minute" in info.explanation


def test_the_rate_is_the_recent_one_not_the_average_since_the_start():
    info = observed(400, T0 + 45 * MIN, [(T0 + 30 * MIN, 100), (T0 + 40 * MIN, 300)])
    # Over the last 15 minutes: 100 → 400 in 15 min = 20/min (the average since in_progress_at is ~8.9/min).
    assert info.rate_per_minute == pytest.approx(20.0)
    assert info.eta_at == T0 + 45 * MIN + 30 * MIN


def test_zero_progress_gives_no_eta_and_is_not_yet_stalled():
    info = observed(0, T0 + 10 * MIN, [(T0 + 5 * MIN, 0)])
    assert info.eta_at is None and info.rate_per_minute == 0
    assert info.explanation == "No ETA: no request finished over the last 10 minutes."
    assert info.flags == []


def test_a_batch_with_no_samples_and_no_start_time_has_no_eta_yet():
    rec = record("b", completed=10, in_progress_at=None)
    info = oversight(rec, T0)
    assert info.eta_at is None and info.flags == []
    assert "needs two observations" in info.explanation


def test_one_sample_is_measured_from_the_time_the_batch_started():
    # One observation (the record itself) plus the in_progress_at anchor: 100 done in 10 minutes.
    rec = record("b", completed=100, seen=T0 + 10 * MIN)
    info = oversight(rec, T0 + 10 * MIN)
    assert info.rate_per_minute == pytest.approx(10.0)
    assert info.eta_at == T0 + 10 * MIN + 90 * MIN


def test_validating_and_finalizing_batches_have_no_eta_but_say_why():
    validating = record("v", status="validating", total=0, in_progress_at=None)
    assert "has not started counting" in oversight(validating, T0).explanation
    finalizing = record("f", status="finalizing", completed=1000, finalizing_at=T0, seen=T0 + MIN)
    info = oversight(finalizing, T0 + MIN)
    assert info.eta_at is None and "writing the output files" in info.explanation and info.flags == []


def test_at_risk_when_the_eta_is_past_expiry_with_a_sentence():
    info = observed(100, T0 + 10 * MIN, [(T0 + 5 * MIN, 50)], expires_at=T0 + 60 * MIN)
    assert info.eta_at == T0 + 100 * MIN
    [flag] = info.flags
    assert flag.slug == "at-risk" and flag.label == "at risk"
    # 10/min for the 50 minutes left: 600 done at expiry, 400 of 1000 unfinished.
    assert "about 400 requests would expire unfinished" in flag.sentence
    assert "10.0 requests a minute" in flag.sentence and flag.sentence.count(".") >= 1


def test_stalled_after_thirty_minutes_without_progress_in_progress():
    points = [(T0 + 5 * MIN, 250), (T0 + 10 * MIN, 500), (T0 + 25 * MIN, 500), (T0 + 40 * MIN, 500)]
    info = observed(500, T0 + 45 * MIN, points)
    assert info.flag_slugs == ["stalled"]
    assert info.flags[0].sentence == "Stalled: no request has finished for 35 minutes while the batch is in progress."
    assert info.eta_at is None


def test_not_stalled_before_thirty_minutes():
    rec = record("b", completed=500, seen=T0 + 35 * MIN)
    samples("b", [(T0 + 5 * MIN, 250), (T0 + 10 * MIN, 500)])
    assert "stalled" not in oversight(rec, T0 + 35 * MIN).flag_slugs  # 25 minutes quiet


def test_zero_progress_for_half_an_hour_is_stalled():
    rec = record("b", completed=0, seen=T0 + 31 * MIN)
    assert oversight(rec, T0 + 31 * MIN).flag_slugs == ["stalled"]


def test_a_batch_stuck_in_finalizing_is_stalled():
    rec = record("b", status="finalizing", completed=1000, finalizing_at=T0 + 10 * MIN, seen=T0 + 50 * MIN)
    samples("b", [(T0 + 20 * MIN, 1000)], status="finalizing")
    info = oversight(rec, T0 + 50 * MIN)
    assert info.flag_slugs == ["stalled"]
    assert "has not moved on for 40 minutes while the batch is finalizing" in info.flags[0].sentence


@pytest.mark.parametrize("completed, failed, flagged", [(80, 20, True), (91, 9, False), (90, 10, False), (0, 1, True), (0, 0, False)])
def test_failing_when_more_than_ten_percent_of_finished_requests_failed(completed, failed, flagged):
    rec = record("b", completed=completed, failed=failed, seen=T0 + MIN)
    assert ("failing" in oversight(rec, T0 + MIN).flag_slugs) is flagged
    assert (flags.flagged_ids("default", "failing") == {"b"}) is flagged, "the SQL filter agrees"


def test_failing_also_marks_a_finished_batch_and_nothing_else_does():
    rec = record("b", status="completed", completed=50, failed=50, seen=T0 + 99 * 3600, expires_at=T0)
    info = oversight(rec, T0 + 99 * 3600)
    assert info.flag_slugs == ["failing"]
    assert info.flags[0].sentence.startswith("50 % of finished requests failed (50 of 100)")


def test_flagged_ids_and_flag_q_select_each_flag_within_the_projects_asked():
    now = T0 + 45 * MIN
    record("fine", completed=900, seen=now)
    samples("fine", [(T0 + 35 * MIN, 700)])
    record("late", completed=100, seen=now, expires_at=T0 + 50 * MIN)
    record("stuck", completed=300, seen=now)
    samples("stuck", [(T0 + 10 * MIN, 300)])
    record("broken", completed=50, failed=50, seen=now)
    samples("broken", [(T0 + 40 * MIN, 90)])
    record("stuck", completed=300, seen=now, project="hidden")
    samples("stuck", [(T0 + 10 * MIN, 300)], project="hidden")

    assert flags.flagged_ids("default", "at-risk", now) == {"late"}
    assert flags.flagged_ids("default", "stalled", now) == {"stuck"}
    assert flags.flagged_ids("default", "failing", now) == {"broken"}
    stalled = BatchRecord.objects.filter(flags.flag_q("stalled", ["default"], now))
    assert {(r.project, r.batch_id) for r in stalled} == {("default", "stuck")}
    both = BatchRecord.objects.filter(flags.flag_q("stalled", ["default", "hidden"], now))
    assert {(r.project, r.batch_id) for r in both} == {("default", "stuck"), ("hidden", "stuck")}
    assert not BatchRecord.objects.filter(flags.flag_q("at-risk", [], now)).exists()
    with pytest.raises(ValueError):
        flags.flagged_ids("default", "sad", now)


def test_the_batch_page_tag_explains_eta_and_flags_for_an_upstream_batch():
    now = timezone.now().timestamp()
    samples("live", [(now - 10 * MIN, 100)])
    batch = Batch.from_api({
        "id": "live", "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "file-1",
        "completion_window": "24h", "status": "in_progress", "created_at": int(now - 3600), "in_progress_at": int(now - 20 * MIN),
        "expires_at": int(now + 10 * MIN), "model": "gpt-4o-mini", "request_counts": {"total": 1000, "completed": 200, "failed": 100},
    })
    panel = Template("{% load oversight_tags %}{% batch_oversight batch %}").render(
        Context({"batch": batch, "project": type("P", (), {"slug": "default"})()})
    )
    assert "700 requests left at 20.0 a minute, the rate over the last 10 minutes" in panel
    assert "flag-at-risk" in panel and "would expire unfinished" in panel
    assert "flag-failing" in panel and "33 % of finished requests failed" in panel
    assert "no price" in panel and "no token usage" in panel
    # The list's own flag badge (templates/jinja2/batches/rows.jinja, flag_badge), sentence included for screen readers.
    assert panel.count('class="badge flag-badge') == 2 and '<span class="visually-hidden">: Stalled' not in panel
    assert '<span class="visually-hidden">: 33 % of finished requests failed' in panel


def test_samples_seconds_apart_do_not_outweigh_the_rate_since_the_batch_started():
    # 20 hours in at 2 % done: whatever the last 20 seconds showed, it cannot finish in the 4 h left.
    seen = T0 + 20 * 3600
    rec = record("slow", completed=20, seen=seen)
    samples("slow", [(seen - 20, 10)])
    info = oversight(rec, seen)
    assert info.rate_per_minute == pytest.approx(20 / (20 * 60))
    assert info.explanation == "980 requests left at 0.0 a minute, the rate since it started 20 hours ago."
    assert info.flag_slugs == ["at-risk"]


def test_a_rate_over_seconds_is_named_in_seconds_never_the_last_0_minutes():
    rec = record("fresh", completed=0, seen=T0 + 40, in_progress_at=None)
    samples("fresh", [(T0 + 10, 0)])
    info = oversight(rec, T0 + 40)
    assert info.explanation == "No ETA: no request finished over the last 30 seconds."
    assert "0 minutes" not in info.explanation


def test_a_young_batch_measured_over_seconds_says_seconds():
    rec = record("young", completed=30, seen=T0 + 90, in_progress_at=None)
    samples("young", [(T0 + 30, 0)])
    info = oversight(rec, T0 + 90)
    assert info.explanation == "970 requests left at 30.0 a minute, the rate over the last 60 seconds."
