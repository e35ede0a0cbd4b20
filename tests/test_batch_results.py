"""The results page (output and error lines joined by custom_id, paged, filtered) and "retry the
failed", against the emulator over real HTTP."""

from __future__ import annotations

import json
import re
from html import escape as html_escape

import pytest
from django.urls import reverse

from batch_files import CHAT, INPUT_IDS, file_bytes, input_line, make_batch
from batches import results
from batches.results import page as results_pages
from batches.results import records
from batches.models import CreateSubmission
from batches.projects import get_project
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

def project():
    return get_project("default")  # after the upstream fixture has pointed the settings at the emulator


def shown_ids(html: str) -> list[str]:
    return re.findall(r"<td><code>([^<]+)</code></td>", html)


def url(batch, **query):
    base = reverse("batches:results", args=["default", batch["id"]])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def test_results_are_joined_by_custom_id_and_shown_in_input_order(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    response = client.get(url(batch))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert shown_ids(html) == INPUT_IDS
    assert "3 succeeded, 1 failed, 1 expired, 1 without a result" in html
    assert "Partial results" in html


def test_the_results_page_as_an_htmx_request_is_only_the_table(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    response = client.get(url(batch), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html and 'id="results-table"' in html


def test_each_row_shows_status_code_error_code_and_message(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    page = results.results_page(project(), upstream_batch(batch))
    rows = {row.custom_id: row for row in page.rows}
    assert (rows["b"].outcome, rows["b"].status_code, rows["b"].error_code) == ("failed", 400, "model_not_found")
    assert rows["b"].error_message == "Bad model <x>"
    assert (rows["d"].outcome, rows["d"].error_code) == ("expired", "batch_expired")
    assert (rows["a"].outcome, rows["a"].status_code, rows["a"].input_line) == ("succeeded", 200, 1)
    assert rows["f"].outcome == "no result" and rows["f"].status_code is None
    html = client.get(url(batch)).content.decode()
    assert "model_not_found" in html and "Bad model &lt;x&gt;" in html and "batch_expired" in html


def test_response_bodies_are_escaped_and_pretty_printed(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    html = client.get(url(batch)).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '\n  &quot;object&quot;: &quot;chat.completion&quot;' in html


def test_long_bodies_are_truncated_with_a_note_and_the_full_body_in_details(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    page = results.results_page(project(), upstream_batch(batch))
    big = next(row for row in page.rows if row.custom_id == "e")
    assert big.body_truncated and len(big.body_preview) == records.PREVIEW_CHARS
    assert not big.full_truncated and "word word" in big.body_full
    html = client.get(url(batch)).content.decode()
    assert "Truncated for display" in html and "<summary>Full body</summary>" in html


def test_the_failed_filter_shows_only_requests_that_did_not_succeed(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    html = client.get(url(batch, filter="failed")).content.decode()
    assert shown_ids(html) == ["b", "d", "f"]
    assert '<option value="failed" selected>only requests that did not succeed</option>' in html


def test_results_are_paged_with_the_page_in_the_query_string(client, upstream, tmp_path, monkeypatch):
    monkeypatch.setattr(results_pages, "PER_PAGE", 2)
    batch = make_batch(upstream, tmp_path)
    html = client.get(url(batch, page=2)).content.decode()
    assert shown_ids(html) == ["c", "d"]
    assert "Page 2 of 3" in html and "?page=1" in html and "?page=3" in html
    assert shown_ids(client.get(url(batch, page=99)).content.decode()) == ["e", "f"]
    assert shown_ids(client.get(url(batch, page="x")).content.decode()) == ["a", "b"]
    assert shown_ids(client.get(url(batch, page=2, filter="failed")).content.decode()) == ["f"]


def test_a_page_of_an_unfinished_batch_keeps_only_its_own_rows(upstream, tmp_path, monkeypatch):
    """An unfinished batch's files may still change, so nothing is kept: each page parses only the
    rows it shows."""
    batch = dict(make_batch(upstream, tmp_path), status="in_progress")
    parsed = []
    real = records.shown_row
    monkeypatch.setattr(results_pages, "shown_row", lambda record, line=None: parsed.append(record["custom_id"]) or real(record, line))
    results.results_page(project(), upstream_batch(batch), page=1, per_page=2)
    assert sorted(parsed) == ["a", "b"]


def test_without_the_input_file_rows_follow_result_order(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, with_input=False)
    html = client.get(url(batch)).content.decode()
    assert shown_ids(html) == ["e", "c", "a", "d", "b"]
    assert "could not be read" in html


def test_an_expired_batch_from_the_real_lifecycle_shows_its_partial_results(client, upstream, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(input_line(f"r{i}") + "\n" for i in range(20)))
    meta = upstream.state.add_file(str(path), "in.jsonl", "batch")
    created = upstream.state.create_batch(meta["id"], CHAT)
    upstream.state.configure_batch(created.data["id"], rate=10 / 86400)
    upstream.state.advance(90_000)
    batch = upstream.state.get_batch(created.data["id"])
    assert batch["status"] == "expired"
    page = results.results_page(project(), upstream_batch(batch))
    outcomes = [row.outcome for row in page.rows]
    assert outcomes.count("expired") >= 5 and outcomes.count("succeeded") >= 1
    assert page.total == 20 and "no result" not in outcomes
    assert client.get(url(batch)).status_code == 200


def test_a_batch_without_result_files_yet_says_so(client, upstream):
    batch = upstream.state.add_batch(status="in_progress", output_file_id=None, error_file_id=None)
    html = client.get(url(batch)).content.decode()
    assert "No results yet" in html and upstream.state.counts["GET /v1/files/{id}/content"] == 0


def test_an_unknown_batch_is_a_404_worded_as_on_the_batch_page(client, upstream):
    on_results = client.get(reverse("batches:results", args=["default", "batch_nope"]))
    on_detail = client.get(reverse("batches:detail", args=["default", "batch_nope"]))
    assert on_results.status_code == on_detail.status_code == 404
    sentence = "There is no batch “batch_nope” in project"
    assert sentence in on_results.content.decode() and sentence in on_detail.content.decode()
    assert "no such object" not in on_results.content.decode()


def test_the_results_page_has_the_list_pages_structure(client, upstream, tmp_path, monkeypatch):
    monkeypatch.setattr(results_pages, "PER_PAGE", 2)
    batch = make_batch(upstream, tmp_path)
    html = client.get(url(batch, page=2)).content.decode()
    assert '<nav class="crumbs" aria-label="Breadcrumb">' in html and '<div class="page-head">' in html
    assert f'href="/projects/default/batches/{batch["id"]}/files/output.jsonl" download' in html
    assert '<div class="table-scroll">\n  <table class="results-rows">' in html
    assert re.findall(r"<th\b[^>]*>", html.split('class="results-rows"')[1].split("</thead>")[0]) == ['<th scope="col">'] * 5
    # The pager: htmx attributes once, on the <nav>; each link has a real href and its hx-get.
    nav = re.search(r'<nav class="pager"[^>]*>.*?</nav>', html, re.S).group(0)
    assert nav.startswith('<nav class="pager" aria-label="Pages" hx-target="#results-table" hx-swap="outerHTML" hx-push-url="true">')
    assert nav.count("hx-target") == 1 and nav.count("hx-push-url") == 1
    assert 'href="?page=1" hx-get="?page=1">« First page' in nav and 'rel="next" href="?page=3"' in nav


def test_a_failed_row_shows_its_error_once(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    html = client.get(url(batch, filter="failed")).content.decode()
    row_b = re.search(r'<tr class="outcome-failed">.*?</tr>', html, re.S).group(0)
    assert row_b.count("Bad model &lt;x&gt;") == 2  # the error line, and the raw body behind "Response body"
    assert row_b.count('<p class="row-error"><code>model_not_found</code> Bad model &lt;x&gt;</p>') == 1
    assert "<summary>Response body</summary>" in row_b
    assert row_b.count("<td") == 5


def test_results_can_be_searched_by_custom_id_and_the_pager_keeps_the_search(client, upstream, tmp_path, monkeypatch):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(input_line(f"user-{i}") + "\n" for i in range(5)) + input_line("other") + "\n")
    file_id = upstream.state.add_file(str(path), "in.jsonl", "batch")["id"]
    batch = upstream.state.add_batch(status="cancelled", endpoint=CHAT, input_file_id=file_id,
                                     output_file_id=None, error_file_id=None)
    monkeypatch.setattr(results_pages, "PER_PAGE", 2)
    html = client.get(url(batch, custom_id="user-")).content.decode()
    assert shown_ids(html) == ["user-0", "user-1"] and "Page 1 of 3 (5 requests)" in html
    assert 'value="user-"' in html and "?custom_id=user-&amp;page=2" in html
    assert shown_ids(client.get(url(batch, custom_id="user-", page=3)).content.decode()) == ["user-4"]
    nothing = client.get(url(batch, custom_id="<nope>")).content.decode()
    assert "no custom_id starts with “&lt;nope&gt;”" in nothing and shown_ids(nothing) == []


def test_the_retry_button_asks_first_saying_how_many_requests_are_sent_again(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    html = client.get(url(batch)).content.decode()
    form = re.search(r'<form method="post" action="[^"]*/retry-failed/"[^>]*>', html).group(0)
    assert 'hx-confirm="Send 3 requests again in a new batch? The Batch API bills them again."' in form
    assert """hx-vals='{"confirmed": "yes"}'""" in form


def test_without_javascript_retrying_shows_a_confirmation_step_first(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    target = reverse("batches:retry_failed", args=["default", batch["id"]])
    step = client.post(target, {"token": "retry-c"})
    html = step.content.decode()
    assert step.status_code == 200 and "<html" in html
    assert "Send 3 requests again?" in html and "Yes, send 3 requests again</button>" in html
    assert 'name="confirmed" value="yes"' in html and 'name="token" value="retry-c"' in html
    assert upstream.state.counts["POST /v1/files"] == 0 and upstream.state.counts["POST /v1/batches"] == 0
    done = client.post(target, {"token": "retry-c", "confirmed": "yes"})
    assert done.status_code == 302 and upstream.state.counts["POST /v1/batches"] == 1


def test_the_confirmed_htmx_retry_goes_to_the_new_batch_as_a_whole_page(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    target = reverse("batches:retry_failed", args=["default", batch["id"]])
    response = client.post(target, {"token": "retry-h", "confirmed": "yes"}, headers=HTMX)
    assert response.status_code == 200 and response["HX-Redirect"].startswith("/projects/default/batches/batch_")
    assert upstream.state.counts["POST /v1/batches"] == 1


def test_an_upstream_failure_reading_a_file_is_an_error_page_not_a_500(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    upstream.state.inject_fault(route="/v1/files/{id}/content", status=500, times=10)
    response = client.get(url(batch))
    assert response.status_code == 503


def test_the_results_index_of_a_finished_batch_is_reused_between_pages(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    client.get(url(batch))
    upstream.state.reset_counts()
    client.get(url(batch, page=1, filter="failed"))
    # A finished batch's join is kept in the database: no file is read again for another page.
    assert upstream.state.counts["GET /v1/files/{id}/content"] == 0


# ---------------------------------------------------------------------------
# Retry the failed
# ---------------------------------------------------------------------------


def upstream_batch(batch):
    from batches.upstream import Batch

    return Batch.from_api(batch)


def test_the_retry_file_holds_the_input_lines_that_did_not_succeed(upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    lines = b"".join(results.iter_retry_lines(project(), upstream_batch(batch)))
    assert lines.decode() == "".join(input_line(i) + "\n" for i in ["b", "d", "f"])


def test_the_retry_file_is_offered_on_the_results_page(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    html = client.get(url(batch)).content.decode()
    assert "3 requests did not succeed" in html
    assert reverse("batches:retry_failed_download", args=["default", batch["id"]]) in html
    assert reverse("batches:retry_failed", args=["default", batch["id"]]) in html


def test_retrying_creates_a_new_batch_from_the_failed_lines_linked_to_the_original(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    response = client.post(reverse("batches:retry_failed", args=["default", batch["id"]]), {"token": "retry-1", "confirmed": "yes"})
    assert response.status_code == 302
    new_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    new = upstream.state.get_batch(new_id)
    assert new["metadata"] == {"retry_of": batch["id"]} and new["endpoint"] == CHAT
    uploaded = file_bytes(upstream, new["input_file_id"]).decode()
    assert [json.loads(line)["custom_id"] for line in uploaded.splitlines()] == ["b", "d", "f"]
    assert upstream.state.get_file(new["input_file_id"])[0]["filename"] == f"{batch['id']}_retry.jsonl"


def test_retrying_twice_with_the_same_form_creates_one_batch(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    target = reverse("batches:retry_failed", args=["default", batch["id"]])
    first = client.post(target, {"token": "retry-1", "confirmed": "yes"})
    second = client.post(target, {"token": "retry-1", "confirmed": "yes"})
    assert first["Location"] == second["Location"]
    assert upstream.state.counts["POST /v1/batches"] == 1 and CreateSubmission.objects.count() == 1


def test_a_batch_that_is_still_running_can_not_be_retried(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, status="in_progress")
    response = client.post(reverse("batches:retry_failed", args=["default", batch["id"]]), {"token": "t"})
    assert response.status_code == 302 and upstream.state.counts["POST /v1/files"] == 0


def test_a_batch_where_everything_succeeded_has_nothing_to_retry(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, status="completed", error_file_id=None)
    # An input of only the requests that succeeded:
    path = tmp_path / "only.jsonl"
    path.write_text("".join(input_line(i) + "\n" for i in ["a", "c", "e"]))
    upstream.state.batches[batch["id"]].data["input_file_id"] = upstream.state.add_file(str(path), "only.jsonl", "batch")["id"]
    response = client.post(reverse("batches:retry_failed", args=["default", batch["id"]]), {"token": "t", "confirmed": "yes"}, follow=True)
    assert "nothing to retry" in response.content.decode()
    assert upstream.state.counts["POST /v1/files"] == 0


def test_when_creating_the_retry_batch_fails_the_uploaded_file_is_offered(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    upstream.state.inject_fault(route="/v1/batches", method="POST", status=500, times=1)
    response = client.post(reverse("batches:retry_failed", args=["default", batch["id"]]), {"token": "t", "confirmed": "yes"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("batches:create", args=["default"]) + "?input_file_id=file-")
    page = client.get(response["Location"])
    assert ("retry_of", batch["id"]) in page.context["form"].metadata_rows
    assert "creating the batch failed" in page.content.decode()


def test_a_batch_that_failed_validation_has_no_results_and_nothing_to_retry(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, status="failed", output_file_id=None, error_file_id=None)
    html = client.get(url(batch)).content.decode()
    assert "failed before running any request" in html and "Retry them" not in html
    assert upstream.state.counts["GET /v1/files/{id}/content"] == 0


def test_a_cancelled_batch_without_result_files_lists_its_requests_as_never_run(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, status="cancelled", output_file_id=None, error_file_id=None)
    html = client.get(url(batch)).content.decode()
    assert shown_ids(html) == INPUT_IDS and "6 without a result" in html and "Retry them in a new batch" in html


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": "Blue,\n  cotton."}}]}, "Blue, cotton."),
        ({"object": "text_completion", "choices": [{"text": "plain text"}]}, "plain text"),
        ({"object": "response", "output": [{"type": "message", "content": [{"type": "output_text", "text": "From responses"}]}]}, "From responses"),
        ({"object": "list", "data": [{"embedding": [0.1]}, {"embedding": [0.2]}], "model": "text-embedding-3-small"}, "2 results (text-embedding-3-small)"),
        ({"error": {"message": "bad", "type": "invalid_request_error"}}, '{"error":{"message":"bad","type":"invalid_request_error"}}'),
        ({"unknown": "shape"}, '{"unknown":"shape"}'),
        (None, ""),
    ],
)
def test_each_result_row_has_a_one_line_summary_of_the_answer(body, expected):
    assert results.summarize_body(body) == expected


def test_a_long_summary_is_cut_with_an_ellipsis():
    summary = results.summarize_body({"choices": [{"message": {"content": "x" * 500}}]})
    assert len(summary) == records.SUMMARY_CHARS and summary.endswith("…")


@pytest.mark.parametrize(("query", "sentence"), [
    ({"page": "x"}, "“x” is not a page number; showing the first page."),
    ({"page": "0"}, "“0” is not a page number; showing the first page."),
    ({"filter": "weird"}, "“weird” is not a filter of results (only “failed” is); showing every request."),
    ({"custom_id": "c" * 201}, "A custom_id search is at most 200 characters; showing every custom_id."),
])
def test_a_bad_parameter_is_a_sentence_and_its_default(client, upstream, tmp_path, query, sentence):
    batch = make_batch(upstream, tmp_path)
    for headers in ({}, HTMX):
        response = client.get(url(batch, **query), headers=headers)
        html = response.content.decode()
        assert response.status_code == 200
        assert f'<div class="message message-warning" role="alert">{html_escape(sentence)}</div>' in html
        assert shown_ids(html) == INPUT_IDS  # every request, first page
