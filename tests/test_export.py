"""Export of a filtered view: CSV and JSON lines, streamed, formula-safe, only visible projects."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse

from batches.export import csv_cell
from find_factory import index, batch_json, make, synced
from tests.helpers import api_usage

pytestmark = pytest.mark.django_db


def body_of(response) -> str:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def rows():
    synced()
    make(id="batch_e1", status="failed", model="o3", created_at=1_700_000_000,
         metadata={"note": "=HYPERLINK(\"http://evil\")", "team": "-ads"},
         usage=api_usage(100, 5, 20, reasoning=7))
    make(id="batch_e2", status="completed", model="o3", created_at=1_700_000_100)
    make(id="batch_e3", status="completed", model="gpt-4.1", created_at=1_700_000_200)
    make("other", id="batch_hidden", status="completed", model="o3")


def test_csv_export_streams_the_filtered_view_with_metadata_and_tokens(client, rows):
    response = client.get("/projects/default/batches/export.csv?model=o3")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="batches-default-')
    text = body_of(response)
    assert "batch_hidden" not in text  # another project's batch
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["batch_id"] for r in table] == ["batch_e2", "batch_e1"]
    first = table[1]
    assert first["status"] == "failed" and first["created_at"] == "2023-11-14T22:13:20Z"
    assert (first["input_tokens"], first["cached_tokens"], first["output_tokens"], first["reasoning_tokens"], first["total_tokens"]) == ("100", "5", "20", "7", "120")
    assert json.loads(first["metadata"]) == {"note": '=HYPERLINK("http://evil")', "team": "-ads"}


def test_csv_cells_that_start_a_formula_are_quoted():
    assert csv_cell("=1+1") == "'=1+1"
    assert csv_cell("+cmd") == "'+cmd"
    assert csv_cell("-2") == "'-2"
    assert csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("plain") == "plain"
    assert csv_cell(-5) == "-5"  # numbers are numbers
    assert csv_cell(None) == ""


def test_a_malicious_model_name_is_neutralised_in_csv(client):
    synced()
    make(id="batch_f1", model="=cmd|' /C calc'!A0", status="failed")
    table = list(csv.DictReader(io.StringIO(body_of(client.get("/projects/default/batches/export.csv?status=failed")))))
    assert table[0]["model"] == "'=cmd|' /C calc'!A0"


def test_jsonl_export_has_one_object_per_line(client, rows):
    response = client.get("/projects/default/batches/export.jsonl?status=completed&sort=created")
    assert response["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in body_of(response).splitlines()]
    assert [line["batch_id"] for line in lines] == ["batch_e2", "batch_e3"]
    assert lines[0]["project"] == "default" and lines[0]["metadata"] == {}


def test_the_export_reads_in_chunks_not_all_at_once(client, monkeypatch):
    """A thousand rows: the response is a generator over .iterator(chunk_size=…), never a list."""
    synced()
    index("default", *[batch_json(id=f"batch_n{i:04d}", status="completed") for i in range(1000)])
    from django.db.models.query import QuerySet

    sizes = []
    real_iterator = QuerySet.iterator

    def spy(self, chunk_size=None):
        sizes.append(chunk_size)
        return real_iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    response = client.get("/projects/default/batches/export.csv?status=completed")
    count = sum(1 for _ in csv.reader(io.StringIO(body_of(response)))) - 1
    assert count == 1000
    assert sizes == [500]


def test_the_export_ignores_the_page_cursor(client, rows):
    lines = body_of(client.get("/projects/default/batches/export.jsonl?model=o3&limit=1&after=1700000100,batch_e2")).splitlines()
    assert len(lines) == 2


def test_an_unknown_export_kind_is_404(client, rows):
    assert client.get("/projects/default/batches/export.xlsx?status=failed").status_code == 404


def test_search_export_covers_only_visible_projects(client, write_projects, proxy_mode):
    headers = proxy_mode("x@example.com", groups=["a-team"])
    write_projects(
        '[projects.a]\napi_key_env = "K_A"\n[projects.b]\napi_key_env = "K_B"\nviewer_groups = ["b-team"]\n', K_A="sk-a", K_B="sk-b"
    )
    make("a", id="batch_a", status="failed")
    make("b", id="batch_b", status="failed")
    text = body_of(client.get("/search/export.csv?status=failed", headers=headers))
    assert "batch_a" in text and "batch_b" not in text
