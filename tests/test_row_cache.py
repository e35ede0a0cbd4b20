"""List rows are rendered once per content: polling re-renders only the rows that changed, and what
differs per request (the CSRF token) or per minute (relative times) never comes from the cache."""

from __future__ import annotations

import time

import pytest

from batches import rows
from batches.upstream import Batch

pytestmark = pytest.mark.django_db

#: One clock reading for every batch built here: a batch built twice must be the same JSON (a second
#: ticking between two builds would make it another row's content).
NOW = int(time.time())


def batch(batch_id: str, status: str = "in_progress", completed: int = 1, created: int | None = None) -> Batch:
    return Batch.from_api({
        "id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "file-x",
        "completion_window": "24h", "status": status, "created_at": created or NOW - 3600,
        "expires_at": NOW + 20 * 3600,
        "request_counts": {"total": 10, "completed": completed, "failed": 0},
    })


@pytest.fixture(autouse=True)
def empty_cache():
    rows.ROW_CACHE.clear()
    yield
    rows.ROW_CACHE.clear()


def ctx(token: str = "a" * 64, can_operate: bool = True) -> rows.RowContext:
    return rows.RowContext.build(project="default", can_operate=can_operate, csrf_token=token)


def test_an_unchanged_row_is_not_rendered_again_and_a_changed_one_is(monkeypatch):
    rendered = []
    real = rows.row_view
    monkeypatch.setattr(rows, "row_view", lambda b, *a, **k: rendered.append(b.id) or real(b, *a, **k))
    first = rows.render_rows([batch("batch_a"), batch("batch_b")], ctx())
    assert rendered == ["batch_a", "batch_b"]
    again = rows.render_rows([batch("batch_a"), batch("batch_b", completed=5)], ctx())
    assert rendered == ["batch_a", "batch_b", "batch_b"]
    assert first.split("</tr>")[0] == again.split("</tr>")[0]  # batch_a: the same markup
    assert first.split("</tr>")[1] != again.split("</tr>")[1]  # batch_b: its new counts


def test_the_csrf_token_of_each_request_is_in_its_rows_never_anothers():
    one = rows.render_rows([batch("batch_a")], ctx(token="x" * 64))
    two = rows.render_rows([batch("batch_a")], ctx(token="y" * 64))
    assert 'value="' + "x" * 64 + '"' in one and "y" * 64 not in one
    assert 'value="' + "y" * 64 + '"' in two and "x" * 64 not in two
    assert rows.CSRF_MARK not in one + two


def test_who_looks_is_part_of_the_key():
    operator = rows.render_rows([batch("batch_a")], ctx(can_operate=True))
    reader = rows.render_rows([batch("batch_a")], ctx(can_operate=False))
    assert "/cancel/" in operator and "/cancel/" not in reader


def test_relative_times_are_not_kept_past_their_minute(monkeypatch):
    created = int(time.time()) - 5
    now = [time.time()]
    monkeypatch.setattr(rows.time, "time", lambda: now[0])
    rows.render_rows([batch("batch_new", created=created)], ctx())
    assert len(rows.ROW_CACHE) == 1
    now[0] += 11  # a row under a minute old may read differently every 10 s
    rows.render_rows([batch("batch_new", created=created)], ctx())
    assert len(rows.ROW_CACHE) == 2


def test_index_rows_become_batches_once_per_content_and_the_raw_json_is_read_only_for_changed_rows(
    django_assert_num_queries,
):
    from batches.index.records import batches_from_records
    from batches.index.store import upsert_batches
    from batches.models import BatchRecord

    upsert_batches("default", [batch("batch_a"), batch("batch_b")])
    page = lambda: list(BatchRecord.objects.filter(project="default").order_by("batch_id").defer("raw", "search_text"))  # noqa: E731

    first = page()
    with django_assert_num_queries(1):  # the raw JSON of both rows, in one query
        made = batches_from_records(first)
    assert [made[r.pk].request_counts.completed for r in first] == [1, 1]

    again = page()
    with django_assert_num_queries(0):  # nothing changed: kept
        assert batches_from_records(again)[again[0].pk] is made[first[0].pk]

    upsert_batches("default", [batch("batch_a", completed=7)])  # a write moves the row's last_synced
    changed = page()
    with django_assert_num_queries(1):  # only batch_a's raw JSON is read
        remade = batches_from_records(changed)
    assert remade[changed[0].pk].request_counts.completed == 7
    assert remade[changed[1].pk] is made[first[1].pk]
