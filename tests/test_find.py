"""The filtered batch list (/projects/<slug>/batches/?status=…): served from the index, every filter and
their combinations, bad values, keyset pages for each sort, counts as chips, freshness, htmx partials."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.index import query, selectors
from batches.index.filters import parse_filters
from batches.index.store import store_counts
from batches.vocabulary import SORTS
from find_factory import DAY, T0, batch_json, index, make, synced
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

URL = "/projects/default/batches/"
ROW_ID = re.compile(r'<tr id="row-([^"]+)"')


def ids(body: str) -> list[str]:
    return ROW_ID.findall(body)


def get(client, qs: str, **headers):
    return client.get(f"{URL}?{qs}", headers=headers)


def page_ids(client, qs: str) -> list[str]:
    response = get(client, qs)
    assert response.status_code == 200, response.content.decode()[:2000]
    return ids(response.content.decode())


def next_link(body: str) -> str | None:
    match = re.search(r'rel="next" href="([^"]+)"', body)
    return html.unescape(match.group(1)) if match else None


@pytest.fixture
def mixed():
    """Eight batches across statuses, models, endpoints, days and metadata, in project default."""
    synced()
    rows = [
        batch_json(id="batch_a1", status="failed", created_at=T0, model="gpt-4.1", metadata={"team": "search", "run": "Nightly-7"}),
        batch_json(id="batch_a2", status="in_progress", created_at=T0 + DAY, model="gpt-4.1"),
        batch_json(id="batch_b1", status="completed", created_at=T0 + 2 * DAY, model="o3", endpoint="/v1/chat/completions",
                   request_counts={"total": 10, "completed": 6, "failed": 4}, metadata={"team": "ads"}),
        batch_json(id="batch_b2", status="expired", created_at=T0 + 3 * DAY, model="o3", output_file_id="file-OUT42"),
        batch_json(id="batch_c1", status="completed", created_at=T0 + 4 * DAY, model="gpt-4.1", metadata={"team": "search"}),
        batch_json(id="batch_c2", status="validating", created_at=T0 + 5 * DAY, model="text-embedding-3-small",
                   endpoint="/v1/embeddings", expires_at=None),
        batch_json(id="batch_d1", status="cancelled", created_at=T0 + 6 * DAY, model="gpt-4.1", error_file_id="file-ERR9",
                   request_counts={"total": 10, "completed": 1, "failed": 9}),
        batch_json(id="batch_d2", status="failed", created_at=T0 + 7 * DAY, model="o3"),
    ]
    index("default", *rows)
    # Another project's batch matches many filters and must never show up here.
    make("other", id="batch_zz", status="failed", created_at=T0 + DAY, model="gpt-4.1", metadata={"team": "search"})
    return rows


def test_without_filters_the_list_still_reads_the_api_live(client, upstream, mixed):
    body = client.get(URL).content.decode()
    assert ids(body) == [b["id"] for b in upstream.state.list_batches()[:20]]
    assert "batch_a1" not in ids(body)
    # ...and offers the index's status chips as filter links.
    assert f'href="{URL}?status=failed"' in body


def test_a_status_filter_is_served_from_the_index_without_an_upstream_call(client, upstream, mixed):
    upstream.state.reset_counts()
    assert page_ids(client, "status=failed") == ["batch_d2", "batch_a1"]
    assert upstream.state.total_requests() == 0


def test_status_is_repeatable(client, mixed):
    assert page_ids(client, "status=failed&status=expired") == ["batch_d2", "batch_b2", "batch_a1"]


@pytest.mark.parametrize(
    ("qs", "expected"),
    [
        ("endpoint=/v1/embeddings", ["batch_c2"]),
        ("model=o3", ["batch_d2", "batch_b2", "batch_b1"]),
        ("created_after=2025-03-14", ["batch_d2", "batch_d1", "batch_c2", "batch_c1"]),
        ("created_before=2025-03-11", ["batch_a2", "batch_a1"]),  # inclusive: the whole day of the 11th
        ("created_after=2025-03-11&created_before=2025-03-11", ["batch_a2"]),
        ("q=batch_b", ["batch_b2", "batch_b1"]),  # id prefix
        ("q=BATCH_C1", ["batch_c1"]),  # case-insensitive
        ("q=file-out42", ["batch_b2"]),  # output file id
        ("q=file-ERR9", ["batch_d1"]),  # error file id
        ("q=nightly-7", ["batch_a1"]),  # metadata value
        ("meta=team:search", ["batch_c1", "batch_a1"]),
        ("meta=team:search&meta=run:Nightly-7", ["batch_a1"]),
        ("meta=team:Search", []),  # metadata values match exactly
        ("status=failed&model=o3", ["batch_d2"]),
        ("model=gpt-4.1&meta=team:search&created_after=2025-03-12", ["batch_c1"]),
        ("status=completed&status=in_progress&model=gpt-4.1", ["batch_c1", "batch_a2"]),
        ("sort=created&model=o3", ["batch_b1", "batch_b2", "batch_d2"]),
        ("sort=-failed&status=completed&status=cancelled", ["batch_d1", "batch_b1", "batch_c1"]),
    ],
)
def test_each_filter_and_combinations(client, mixed, qs, expected):
    assert page_ids(client, qs) == expected


def test_the_first_input_file_id_is_searchable(client, mixed):
    make(id="batch_e1", input_file_id="file-Special", status="completed")
    assert page_ids(client, "q=file-special") == ["batch_e1"]


def test_sort_by_expiry_puts_batches_without_expiry_first(client, mixed):
    got = page_ids(client, "sort=expires")
    assert got[0] == "batch_c2"  # no expires_at: lowest, as NULL sorts on SQLite
    assert got[1:] == ["batch_a1", "batch_a2", "batch_b1", "batch_b2", "batch_c1", "batch_d1", "batch_d2"]


@pytest.mark.parametrize(
    ("qs", "message"),
    [
        ("status=bogus", "There is no status"),
        ("status=<script>", "There is no status"),
        ("created_after=yesterday", "is not a date"),
        ("created_before=2025-13-40", "is not a date"),
        ("created_after=2025-03-20&created_before=2025-03-10", "later than"),
        ("sort=random", "Sort by"),
        ("meta=nocolon", "key:value"),
        ("limit=0", "Page size"),
        ("limit=abc", "Page size"),
        ("endpoint=v1/nothing", "endpoint"),
        ("after=garbage", "not one this view wrote"),
        ("after=12,bad/id", "not one this view wrote"),
        ("q=" + "x" * 300, "search text"),
    ],
)
def test_a_bad_value_gets_a_message_and_is_ignored(client, mixed, qs, message):
    response = get(client, qs + "&model=o3")
    body = response.content.decode()
    assert response.status_code == 400
    assert message in html.unescape(body)
    assert "<script>" not in body
    # The bad value is ignored, the good filter still applies.
    if "limit" not in qs and "after" not in qs:
        assert set(ids(body)) <= {"batch_d2", "batch_b2", "batch_b1"}
        assert ids(body)
    # Through htmx the same page is a 200 (htmx swaps only 2xx) with the message.
    partial = get(client, qs + "&model=o3", **HTMX)
    assert partial.status_code == 200
    assert message in html.unescape(partial.content.decode())


def test_an_unknown_status_already_in_the_index_is_filterable(client, mixed):
    make(id="batch_new", status="paused_by_upstream")
    assert page_ids(client, "status=paused_by_upstream") == ["batch_new"]


def _walk(client, qs: str) -> list[str]:
    seen: list[str] = []
    url = f"{URL}?{qs}"
    for _ in range(100):
        body = client.get(url, follow=True).content.decode()  # ?sort=-created (the default) is shortened
        seen.extend(ids(body))
        url = next_link(body)
        if url is None:
            return seen
        assert "after=" in url
    raise AssertionError("too many pages")


@pytest.mark.parametrize("sort", ["-created", "created", "expires", "-failed"])
@pytest.mark.parametrize("extra", ["", "&status=completed&status=failed", "&model=gpt-4.1"])
def test_keyset_pages_cover_every_row_once_in_order_for_each_sort(client, sort, extra):
    synced()
    rows = []
    for i in range(23):
        rows.append(batch_json(
            id=f"batch_k{i:02d}",
            status=("completed", "failed", "in_progress")[i % 3],
            model=("gpt-4.1", "o3")[i % 2],
            created_at=T0 + (i // 4) * 60,  # ties on the sort key: the batch id breaks them
            expires_at=None if i % 7 == 0 else T0 + DAY + (i % 5),
            request_counts={"total": 10, "completed": 10 - i % 4, "failed": i % 4},
        ))
    index("default", *rows)
    if sort == "-created" and not extra:
        extra = "&status=completed&status=failed&status=in_progress"  # the default sort alone is the live list
    got = _walk(client, f"sort={sort}&limit=4{extra}")
    assert len(got) == len(set(got)), "a row appeared on two pages"
    from batches.models import BatchRecord

    filters, problems = parse_filters(__import__("django.http", fromlist=["QueryDict"]).QueryDict(f"sort={sort}{extra}"))
    assert not problems
    column, desc = SORTS[sort]
    expected = list(query.filtered(BatchRecord.objects.filter(project="default"), filters))

    def key(r):
        value = getattr(r, column)
        return ((value is not None), value or 0, r.batch_id)

    expected.sort(key=key, reverse=desc)
    assert got == [r.batch_id for r in expected], "a gap or a wrong order across pages"


def test_pages_link_next_and_first_and_never_use_offset(client, mixed):
    with CaptureQueriesContext(connection) as queries:
        body = get(client, "model=gpt-4.1&limit=2").content.decode()
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    assert ids(body) == ["batch_d1", "batch_c1"]
    nxt = next_link(body)
    assert nxt == f"{URL}?model=gpt-4.1&limit=2&after={T0 + 4 * DAY},batch_c1"
    second = client.get(nxt).content.decode()
    assert ids(second) == ["batch_a2", "batch_a1"]
    assert next_link(second) is None
    assert f'href="{URL}?model=gpt-4.1&amp;limit=2"' in second  # « First page


def test_chips_count_the_filter_and_the_project_and_link_to_their_status(client, mixed):
    body = get(client, "model=o3").content.decode()
    chips = dict(re.findall(r'class="find-chip[^"]*" href="([^"]+)".*?<span class="find-count">(\d+)</span>', body, re.S))
    assert chips[f"{URL}?status=failed&amp;model=o3"] == "1"
    assert chips[f"{URL}?status=expired&amp;model=o3"] == "1"
    assert chips[f"{URL}?status=in_progress&amp;model=o3"] == "0"  # not matching, still a way in
    assert chips[f"{URL}?model=o3"] == "3"  # "all" keeps the other filters
    assert 'title="1 matching the other filters, of 2 in all"' in body  # failed: 2 in the project
    assert "3 matching" in body


def test_counts_are_one_group_by_per_scope(client, mixed):
    def status_counts(sql: str) -> bool:  # the cost total is its own GROUP BY (of tokens per model)
        return "GROUP BY" in sql.upper() and "SUM(" not in sql.upper()

    with CaptureQueriesContext(connection) as queries:
        get(client, "status=failed")
    grouped = [q["sql"] for q in queries.captured_queries if status_counts(q["sql"])]
    assert len(grouped) == 1  # status alone: the project's counts are the filter's
    cache.clear()  # the project's counts are now cached (test_project_counts_are_cached_until_the_index_changes)
    with CaptureQueriesContext(connection) as queries:
        get(client, "status=failed&model=o3")
    grouped = [q["sql"] for q in queries.captured_queries if status_counts(q["sql"])]
    assert len(grouped) == 2


def test_an_htmx_request_gets_the_table_partial_and_the_form_out_of_band(client, mixed):
    response = get(client, "status=failed", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="batch-table"')
    assert 'id="filter-form"' in body and 'hx-swap-oob="true"' in body
    assert ids(body) == ["batch_d2", "batch_a1"]
    assert "HX-Request" in response["Vary"]
    # A cold open of the pushed URL renders the same rows in the full page.
    full = get(client, "status=failed").content.decode()
    assert "<html" in full and ids(full) == ids(body)


def test_the_form_reflects_the_filters(client, mixed):
    body = get(client, "status=failed&q=Nightly&meta=team:search&created_after=2025-03-10&sort=-failed").content.decode()
    assert 'value="failed" checked' in body
    assert 'name="q" value="Nightly"' in body
    assert 'name="meta" value="team:search"' in body
    assert 'name="created_after" value="2025-03-10"' in body
    assert '<option value="-failed" selected>' in body


def test_an_empty_submitted_form_is_the_live_list(client, upstream, mixed):
    response = client.get(f"{URL}?status=&q=&endpoint=&model=&created_after=&created_before=&meta=&sort=-created&limit=20", follow=True)
    assert response.redirect_chain == [(URL, 302)]
    assert ids(response.content.decode()) == [b["id"] for b in upstream.state.list_batches()[:20]]


def test_a_form_submitted_without_javascript_is_redirected_to_the_url_of_only_the_set_filters(client, mixed):
    response = client.get(f"{URL}?status=failed&q=&endpoint=&model=&created_after=&created_before=&meta=&flag=&sort=-created&limit=20")
    assert (response.status_code, response["Location"]) == (302, f"{URL}?status=failed")
    response = client.get(f"{URL}?status=failed&status=expired&q=ads&sort=expires&limit=50&meta=")
    assert response["Location"] == f"{URL}?status=failed&status=expired&q=ads&sort=expires&limit=50"


def test_each_set_filter_is_a_chip_whose_link_removes_only_that_filter(client, mixed):
    body = get(client, "status=failed&status=expired&q=ads&sort=expires&meta=team:search").content.decode()
    nav = body.split('id="active-filters"', 1)[1].split("</nav>", 1)[0]
    chips = re.findall(r'<a class="find-active-chip" href="([^"]+)"[^>]*>([^<]+) <span', nav)
    assert chips == [
        (f"{URL}?status=expired&amp;q=ads&amp;meta=team:search&amp;sort=expires", "status: failed"),
        (f"{URL}?status=failed&amp;q=ads&amp;meta=team:search&amp;sort=expires", "status: expired"),
        (f"{URL}?status=failed&amp;status=expired&amp;meta=team:search&amp;sort=expires", "search: ads"),
        (f"{URL}?status=failed&amp;status=expired&amp;q=ads&amp;sort=expires", "team: search"),
        (f"{URL}?status=failed&amp;status=expired&amp;q=ads&amp;meta=team:search", "expiring soonest"),
    ]
    assert '<summary class="find-fold-toggle">Filters <span class="find-count">5</span></summary>' in body


def test_a_short_url_and_an_htmx_request_are_never_redirected(client, mixed):
    assert client.get(f"{URL}?status=failed").status_code == 200
    assert client.get(f"{URL}?status=failed&q=&sort=-created", headers=HTMX).status_code == 200


def test_search_shortens_a_form_submitted_without_javascript_too(client, mixed):
    response = client.get("/search/?q=&status=failed&endpoint=&sort=-created&limit=20")
    assert (response.status_code, response["Location"]) == (302, "/search/?status=failed")


def test_a_bad_value_survives_the_redirect_and_still_gets_its_sentence(client, mixed):
    response = client.get(f"{URL}?status=failed&q=&created_before=someday", follow=True)
    assert response.redirect_chain == [(f"{URL}?status=failed&created_before=someday", 302)]
    assert response.status_code == 400 and "is not a date like 2025-03-31" in response.content.decode()


def test_freshness_says_when_the_project_was_synced(client, mixed):
    synced(when=timezone.now() - dt.timedelta(seconds=4))
    body = get(client, "status=failed").content.decode()
    assert re.search(r"Synced [45] s ago", body)
    assert "the sync is behind" not in body


def test_freshness_says_the_sync_is_behind(client, settings, mixed):
    settings.DASHBOARD_SYNC_SECONDS = 30
    synced(when=timezone.now() - dt.timedelta(seconds=300))
    assert "the sync is behind" in get(client, "status=failed").content.decode()


def test_an_unfinished_row_older_than_two_sync_intervals_says_so(client, settings):
    settings.DASHBOARD_SYNC_SECONDS = 30
    synced()
    old = timezone.now() - dt.timedelta(seconds=120)
    make(id="batch_old", status="in_progress", now=old)
    make(id="batch_fresh", status="in_progress")
    make(id="batch_done_long_ago", status="completed", now=old)
    body = get(client, "status=in_progress&status=completed").content.decode()
    rows = dict(re.findall(r'<tr id="row-([^"]+)"(.*?)</tr>', body, re.S))
    assert "as of 2 min ago" in rows["batch_old"]
    assert "row-stale" not in rows["batch_fresh"]
    assert "row-stale" not in rows["batch_done_long_ago"]  # a finished batch does not change


def test_a_project_never_synced_says_how_to_start_the_sync_instead_of_an_empty_table(client):
    body = get(client, "status=failed").content.decode()
    assert "never been synced" in body
    assert "manage.py sync_batches" in body
    assert "No batch matches" not in body


def test_metadata_and_ids_are_escaped(client):
    synced()
    make(id="batch_x", status="failed", metadata={"description": "<img src=x onerror=alert(1)>", "k": "<b>"})
    body = get(client, "status=failed").content.decode()
    assert "<img src=x" not in body and "&lt;img src=x" in body
    body = get(client, "q=<b>").content.decode()
    assert ids(body) == ["batch_x"]
    assert 'value="&lt;b&gt;"' in body


def test_a_meta_key_with_double_underscores_or_quotes_is_one_key(client):
    synced()
    make(id="batch_m1", metadata={"a__b": "1", 'we"ird': "2"})
    make(id="batch_m2", metadata={"a": {"b": "1"}})
    assert page_ids(client, "meta=a__b:1") == ["batch_m1"]
    response = get(client, 'meta=we"ird:2')
    assert response.status_code == 400 and "cannot be filtered" in response.content.decode()
    assert page_ids(client, "q=2&meta=a__b:1") == ["batch_m1"]


def test_a_hidden_project_is_a_404_for_filtered_views_too(client, write_projects, proxy_mode):
    outsider = proxy_mode("a@example.com")
    write_projects(
        '[projects.secret]\napi_key_env = "KEY_SECRET"\nviewer_groups = ["secret-team"]\n'
        '[projects.open]\napi_key_env = "KEY_OPEN"\n',
        KEY_SECRET="sk-secret", KEY_OPEN="sk-open",
    )
    make("secret", id="batch_s1", status="failed")
    response = client.get("/projects/secret/batches/?status=failed", headers=outsider)
    assert response.status_code == 404
    assert "batch_s1" not in response.content.decode()


def test_the_trouble_flags_are_filters(client, upstream):
    """?flag=failing keeps the batches where more than 10 % of finished requests failed; a bad flag is
    explained and ignored."""
    from batches.index.store import upsert_batches
    from batches.upstream import Batch

    def batch(batch_id, completed, failed, status="completed", created=1_700_000_000):
        return Batch.from_api({
            "id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "file-x",
            "completion_window": "24h", "status": status, "created_at": created,
            "request_counts": {"total": completed + failed, "completed": completed, "failed": failed},
        })

    upsert_batches("default", [batch("batch_bad", 80, 20), batch("batch_fine", 99, 1, created=1_700_000_100)])
    body = client.get("/projects/default/batches/?flag=failing").content.decode()
    assert "batch_bad" in body and "batch_fine" not in body
    response = client.get("/projects/default/batches/?flag=on-fire")
    assert response.status_code == 400
    assert "on-fire" in response.content.decode() and "batch_fine" in response.content.decode()


# -- speed measures that must keep the answers right (bench/find.py measures the speed) ---------------


def group_bys(client, qs: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = get(client, qs)
    assert response.status_code == 200
    # The status counts select and group by status; the cost total groups by model (a query of its own).
    return sum(1 for q in queries.captured_queries if "GROUP BY" in q["sql"].upper() and 'AS "STATUS"' in q["sql"].upper())


def chip_of(body: str, status: str) -> str:
    """The project's own count of ``status`` (the chip's "of N in all": the cached counts)."""
    match = re.search(rf'class="find-chip[^"]*" href="[^"]*status={status}&amp;q=[^"]*"[^>]*?title="\d+ matching the other filters, of (\d+) in all"', body, re.S)
    assert match, body[:3000]
    return match.group(1)


def test_project_counts_are_cached_until_the_index_changes(client, mixed):
    assert group_bys(client, "status=failed&q=search") == 2  # the project's counts and the filter's
    assert group_bys(client, "status=failed&q=ads") == 1  # the project's counts came from the cache
    # Any write to the index (the sync, a webhook, a cancel through the dashboard) is seen at once:
    # a new batch and a status change, each without waiting for the cache to expire.
    make("default", id="batch_e1", status="failed", created_at=T0 + 8 * DAY)
    body = get(client, "status=failed&q=batch_").content.decode()
    assert ids(body) == ["batch_e1", "batch_d2", "batch_a1"]
    assert chip_of(body, "failed") == "3"
    index("default", batch_json(id="batch_a2", status="failed", created_at=T0 + DAY, model="gpt-4.1"))
    body = get(client, "status=failed&q=batch_").content.decode()
    assert ids(body) == ["batch_e1", "batch_d2", "batch_a2", "batch_a1"]
    assert chip_of(body, "failed") == "4"
    assert selectors.project_status_counts(selectors.scope(["default"]))["default"]["failed"] == 4


def test_counts_are_not_cached_with_the_read_cache_off(client, mixed, settings):
    settings.DASHBOARD_CACHE_SECONDS = 0
    assert group_bys(client, "status=failed&q=search") == 2
    assert group_bys(client, "status=failed&q=ads") == 2


def test_cached_counts_are_per_scope(mixed):
    assert selectors.project_status_counts(selectors.scope(["default"])) == {
        "default": {"failed": 2, "in_progress": 1, "completed": 2, "expired": 1, "validating": 1, "cancelled": 1}
    }
    assert selectors.project_status_counts(selectors.scope(["other"])) == {"other": {"failed": 1}}
    assert selectors.project_status_counts(selectors.scope(["default", "other"]))["other"] == {"failed": 1}
    assert selectors.project_status_counts(selectors.scope(["default"]).filter(pk__in=[])) == {}


@pytest.mark.parametrize("q, expected", [
    ("a*b", ["batch_q1"]),          # GLOB's wildcards are literal characters in q
    ("a?b", ["batch_q2"]),
    ("[x]", ["batch_q3"]),
    ("x]", ["batch_q3"]),
    ("%", ["batch_q4"]),            # and so are LIKE's
    ("under_score", ["batch_q5"]),
    ("UNDER_SCORE", ["batch_q5"]),  # case-insensitive
    ("ÉTÉ", ["batch_q6"]),          # beyond ASCII too
])
def test_q_matches_special_characters_literally(client, q, expected):
    synced()
    values = {"batch_q1": "a*b", "batch_q2": "a?b", "batch_q3": "[x]", "batch_q4": "50%", "batch_q5": "under_score",
              "batch_q6": "été", "batch_q7": "aXb underXscore 50 x"}
    for n, (batch_id, value) in enumerate(values.items()):
        make("default", id=batch_id, created_at=T0 + n, metadata={"note": value})
    from urllib.parse import urlencode

    assert page_ids(client, urlencode({"q": q})) == expected


def test_glob_pattern_escapes_its_wildcards():
    assert query.glob_contains("a*b?c[d]e") == "*a[*]b[?]c[[]d]e*"


def test_the_live_pages_chips_are_cached_until_the_index_changes(mixed):
    scope = selectors.scope(["default"])
    with CaptureQueriesContext(connection) as queries:
        assert selectors.project_status_counts(scope)["default"]["failed"] == 2
        assert selectors.project_status_counts(scope)["default"]["failed"] == 2
    assert sum(1 for q in queries.captured_queries if "GROUP BY" in q["sql"].upper()) == 1
    make("default", id="batch_e2", status="failed", created_at=T0 + 9 * DAY)
    assert selectors.project_status_counts(scope)["default"]["failed"] == 3


def test_counts_outlive_the_read_cache_because_any_index_write_changes_their_key(mixed, settings, monkeypatch):
    settings.DASHBOARD_CACHE_SECONDS = 2
    lifetimes = []
    real_set = cache.set
    monkeypatch.setattr(cache, "set", lambda key, value, timeout=None: lifetimes.append(timeout) or real_set(key, value, timeout))
    selectors.project_status_counts(selectors.scope(["default"]))
    assert lifetimes == [selectors.COUNTS_SECONDS]


def test_after_a_sync_pass_the_counts_come_from_its_snapshot_and_a_later_write_is_counted_again(client, mixed):
    """The sync (and a webhook's refresh) count each project once and keep the counts with the
    project's generation; page views then need no GROUP BY, in any process, until a row is written."""
    expected = selectors.project_status_counts(selectors.scope(["default"]))["default"]
    assert store_counts("default") == expected
    cache.clear()  # nothing in the read cache: the counts must come from the snapshot
    assert group_bys(client, "status=failed&q=ads") == 1  # only the filter's own counts
    body = get(client, "status=failed&q=batch_").content.decode()
    assert chip_of(body, "failed") == str(expected["failed"])
    make("default", id="batch_e9", status="failed", created_at=T0 + 9 * DAY)  # a write the snapshot missed
    body = get(client, "status=failed&q=batch_").content.decode()
    assert chip_of(body, "failed") == str(expected["failed"] + 1)
    assert selectors.counts_by_project(["default"])["default"]["failed"] == expected["failed"] + 1
