"""The scheduler's decisions and the limits table, without I/O."""

from __future__ import annotations

from datetime import timedelta

import pytest

from batches.jobs import decide, outcomes
from batches.project_limits import JobLimits, parse_limits
from batches.projects import ProjectsConfigError, parse_projects


def candidates(*tokens, model="m"):
    return [decide.Candidate(i, model, t, 10) for i, t in enumerate(tokens, start=1)]


def test_chunks_are_submitted_while_the_estimated_queue_stays_within_the_budget():
    queues = {"m": decide.Queue("m", budget=1000, in_flight_tokens=300)}
    plan = decide.plan_submissions(candidates(400, 300, 100), queues, created_last_hour=0)
    assert plan.submit == [1, 2]
    assert plan.held["m"] == "1,000 of 1,000 estimated tokens are queued for m; the next chunk needs 100."


def test_a_chunk_bigger_than_the_whole_budget_is_split_and_a_single_request_is_too_big():
    queues = {"m": decide.Queue("m", budget=100)}
    plan = decide.plan_submissions([decide.Candidate(1, "m", 500, 10), decide.Candidate(2, "m", 500, 1)], queues, 0)
    assert (plan.split, plan.too_big, plan.submit) == ([1], [2], [])


def test_without_a_budget_the_window_of_chunks_in_flight_decides():
    queues = {"m": decide.Queue("m", budget=None, window=2, in_flight_chunks=1)}
    assert decide.plan_submissions(candidates(10**9, 1), queues, 0).submit == [1]


def test_no_more_than_2000_creations_an_hour():
    queues = {"m": decide.Queue("m", budget=None, window=100)}
    plan = decide.plan_submissions(candidates(1, 1, 1), queues, created_last_hour=1999)
    assert plan.submit == [1] and plan.rate_limited


def test_a_refusal_halves_and_each_acceptance_adds_a_tenth_of_the_configured_budget_back():
    assert decide.after_refusal(2_000_000, 1) == (1_000_000, 1)
    assert decide.after_acceptance(1_000_000, 1, 2_000_000) == (1_200_000, 1)
    assert decide.after_acceptance(1_950_000, 1, 2_000_000) == (2_000_000, 1)


def test_without_a_budget_the_window_grows_by_one_and_halves_on_refusal():
    assert decide.after_acceptance(None, 4, None) == (None, 5)
    assert decide.after_refusal(None, 5) == (None, 2)
    assert decide.after_refusal(None, 1) == (None, 1)


def test_backoff_doubles_up_to_an_hour():
    assert [decide.backoff(n, 60) for n in (1, 2, 3)] == [timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240)]
    assert decide.backoff(30, 60) == timedelta(hours=1)


@pytest.mark.parametrize(
    ("record", "attempt", "expected"),
    [
        ({"response": {"status_code": 200, "body": {}}, "error": None}, 1, outcomes.SUCCEEDED),
        ({"response": {"status_code": 500, "body": {}}, "error": None}, 1, outcomes.RETRY),
        ({"response": {"status_code": 429, "body": {}}, "error": None}, 2, outcomes.RETRY),
        ({"response": {"status_code": 500, "body": {}}, "error": None}, 3, outcomes.FAILED),
        ({"response": {"status_code": 400, "body": {}}, "error": None}, 1, outcomes.FAILED),
        ({"response": None, "error": {"code": "batch_expired", "message": "…"}}, 1, outcomes.RETRY),
        ({"response": None, "error": {"code": "invalid_prompt", "message": "…"}}, 1, outcomes.FAILED),
        (None, 1, outcomes.RETRY),
    ],
)
def test_salvage_retries_5xx_429_expired_and_unrun_requests_and_keeps_4xx_final(record, attempt, expected):
    assert outcomes.decide(record, attempt, max_attempts=3) == expected


def test_state_bytes_keep_status_and_attempts():
    byte = outcomes.state_byte(outcomes.RETRY, 2)
    assert (outcomes.status_of(byte), outcomes.attempts_of(byte)) == (outcomes.RETRY, 2)
    assert outcomes.counts(bytes([0, byte, outcomes.state_byte(1, 1), outcomes.state_byte(2, 3)])) == (1, 1, 1, 1)


def test_the_limits_table_is_read_with_defaults():
    problems: list[str] = []
    limits = parse_limits({"queue_tokens": {"gpt-4o-mini": 2_000_000}, "default_queue_tokens": 1_000_000}, "project “p”", problems)
    assert problems == []
    assert (limits.budget_for("gpt-4o-mini"), limits.budget_for("gpt-4.1")) == (2_000_000, 1_000_000)
    assert (limits.max_requests_per_batch, limits.max_bytes_per_batch) == (50_000, 209_715_200)
    assert JobLimits().budget_for("x") is None


def test_a_bad_limit_is_a_configuration_error_naming_the_project_and_the_field(monkeypatch, settings):
    monkeypatch.setenv("K", "sk-1")
    text = """
[projects.prod]
api_key_env = "K"
[projects.prod.limits]
max_requests_per_batch = 60000
queue_tokens = { "gpt-4o-mini" = "lots" }
colour = 1
"""
    with pytest.raises(ProjectsConfigError) as err:
        parse_projects(text)
    assert err.value.problems == [
        "project “prod”: limits: unknown field(s) colour.",
        "project “prod”: limits.max_requests_per_batch must be at least 1 and at most 50,000; it is 60,000.",
        "project “prod”: limits.queue_tokens.gpt-4o-mini must be a whole number, not str 'lots'.",
    ]
