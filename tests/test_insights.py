"""Insights: SQL day buckets, charts with zero, one and many days, the page (full, htmx, CSV), bad
ranges, and a hidden project's data never showing in /insights/."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import pytest
from django.template.loader import render_to_string

from batches.index.store import upsert_batches
from batches.models import BatchRecord
from batches.oversight import charts, insights, pricing
from batches.upstream import Batch
from tests.helpers import HTMX, api_usage

pytestmark = pytest.mark.django_db

D1 = date(2026, 3, 1)


def ts(day: date, hour: int = 12) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp())


def add(project: str, batch_id: str, day: date, status="completed", *, model="gpt-4o-mini", counts=(10, 10, 0),
        usage=(1000, 100, 200), hour=12, minutes_to_complete=60) -> None:
    created = ts(day, hour)
    data = {
        "id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "file-1",
        "completion_window": "24h", "status": status, "created_at": created, "model": model,
        "request_counts": {"total": counts[0], "completed": counts[1], "failed": counts[2]},
    }
    if status == "completed":
        data["completed_at"] = created + minutes_to_complete * 60
    if usage:
        data["usage"] = api_usage(*usage)
    upsert_batches(project, [Batch.from_api(data)])


def rng(start: date, end: date) -> insights.DateRange:
    return insights.DateRange(start, end)


def svg(chart: charts.Chart) -> str:
    """The chart as the insights page draws it (the ``chart`` partial)."""
    return render_to_string("batches/insights.html#chart", {"chart": chart, "drawing": chart.drawing})


def svg_root(chart: charts.Chart) -> ET.Element:
    text = svg(chart)
    assert "style=" not in text and "<script" not in text
    return ET.fromstring(text)


NS = "{http://www.w3.org/2000/svg}"


# -- SQL aggregation -----------------------------------------------------------------------------


def test_batches_are_bucketed_by_utc_day_in_sql_with_empty_days_filled():
    add("default", "a", D1, hour=0)
    add("default", "b", D1, "failed", hour=23, counts=(5, 0, 5), usage=None)
    add("default", "c", D1 + timedelta(days=2), "expired", counts=(10, 4, 0), usage=(500, 0, 50))
    add("default", "d", D1 + timedelta(days=2), "in_progress", counts=(10, 2, 1), usage=None)
    add("default", "e", D1 + timedelta(days=2), "cancelling", usage=None, counts=(0, 0, 0))
    add("default", "outside", D1 + timedelta(days=3))
    data = insights.build(["default"], rng(D1, D1 + timedelta(days=2)))

    outcomes = {s.name: s.values for s in data.charts["outcomes"].series}
    assert outcomes == {
        "completed": [1, 0, 0], "failed": [1, 0, 0], "expired": [0, 0, 1], "cancelled": [0, 0, 1], "unfinished": [0, 0, 1],
    }
    requests = {s.name: s.values for s in data.charts["requests"].series}
    assert requests == {"completed": [10, 0, 6], "failed": [5, 0, 1]}
    tokens = {s.name: s.values for s in data.charts["tokens"].series}
    assert tokens == {"input (not cached)": [900, 0, 500], "cached input": [100, 0, 0], "output": [200, 0, 50]}
    [cost] = data.charts["cost"].series
    assert cost.name == "gpt-4o-mini"
    assert cost.values[0] == pytest.approx(float(pricing.price_usage("gpt-4o-mini", 1000, 100, 200).amount))
    assert data.batches == 5
    assert data.cost.unpriced == 3 and data.cost.batches == 5
    assert data.request_failure_rate == pytest.approx(6 / 22)
    assert data.batch_failure_rate == pytest.approx(2 / 3)
    assert data.median_seconds == 3600 and data.completed_batches == 1


def test_the_median_time_to_complete_and_cost_by_model_ranking():
    for i, minutes in enumerate([10, 20, 90]):
        add("default", f"m{i}", D1, minutes_to_complete=minutes, model="gpt-4.1" if i else "gpt-4o-mini")
    data = insights.build(["default"], rng(D1, D1))
    assert data.median_seconds == 20 * 60
    assert [s.name for s in data.charts["cost"].series] == ["gpt-4.1", "gpt-4o-mini"], "costliest first"


def test_more_than_seven_models_fold_into_other_models():
    for i in range(9):
        add("default", f"x{i}", D1, model=["gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-5", "o3-mini", "gpt-3.5-turbo", "gpt-4.1-nano", "gpt-4o-2024-08-06"][i])
    series = insights.build(["default"], rng(D1, D1)).charts["cost"].series
    assert len(series) == 8 and series[-1].name == "2 other models"


# -- charts ----------------------------------------------------------------------------------------


def test_a_chart_with_no_data_draws_axes_and_says_so():
    chart = insights.build(["default"], rng(D1, D1 + timedelta(days=13))).charts["outcomes"]
    root = svg_root(chart)
    assert root.findall(f"{NS}rect") == []
    assert any(t.text == "Nothing in this range" for t in root.iter(f"{NS}text"))
    assert len(chart.rows) == 14


def test_a_one_day_chart_has_one_bar_stack():
    chart = charts.Chart("c", "C", "batches", [D1], [charts.Series("a", [3]), charts.Series("b", [1])])
    root = svg_root(chart)
    rects = root.findall(f"{NS}rect")
    assert [r.get("class") for r in rects] == ["series-0", "series-1"]
    heights = [float(r.get("height")) for r in rects]
    assert heights[0] == pytest.approx(3 * heights[1], rel=0.01)
    assert rects[0].find(f"{NS}title").text == "2026-03-01: a 3"
    assert chart.rows == [["2026-03-01", "3", "1", "4"]]


def test_a_year_of_days_draws_every_bar_but_few_labels():
    days = [D1 + timedelta(days=i) for i in range(366)]
    chart = charts.Chart("c", "C", "requests", days, [charts.Series("a", [float(i % 7) for i in range(366)])])
    root = svg_root(chart)
    assert len(root.findall(f"{NS}rect")) == sum(1 for i in range(366) if i % 7)
    day_labels = [t for t in root.iter(f"{NS}text") if t.get("text-anchor") == "middle"]
    assert 1 < len(day_labels) <= charts.MAX_X_LABELS + 1


def test_upstream_model_names_are_escaped_in_svg_and_defused_in_csv():
    chart = charts.Chart("c", "C", "US dollars", [D1], [charts.Series('=HYPERLINK("x")<b>', [1.5])], money=True)
    assert "<b>" not in svg(chart) and "&lt;b&gt;" in svg(chart)
    rows = list(csv.reader(io.StringIO(chart.csv())))
    assert rows == [["day", "'=HYPERLINK(\"x\")<b>"], ["2026-03-01", "1.5"]]


@pytest.mark.parametrize("value, ceiling", [(0, 0), (1, 1), (3, 5), (7, 10), (11, 20), (240, 250), (0.0003, 0.0005)])
def test_the_y_axis_ends_at_a_round_number(value, ceiling):
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


# -- ranges ----------------------------------------------------------------------------------------


def test_the_default_range_is_the_last_fourteen_days():
    r = insights.parse_range({}, today=date(2026, 11, 30))
    assert (r.start, r.end, r.problems) == (date(2026, 11, 17), date(2026, 11, 30), [])


@pytest.mark.parametrize(
    "query, words",
    [
        ({"from": "yesterday"}, "must be a date like"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "is after"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "at most 366 days"),
        ({"to": "0001-01-01"}, "out of range"),
    ],
)
def test_a_bad_range_is_a_message_and_a_sensible_default(query, words):
    r = insights.parse_range(query, today=date(2026, 11, 30))
    assert len(r.problems) == 1 and words in r.problems[0]
    assert 1 <= len(r.days) <= insights.MAX_DAYS


# -- the page --------------------------------------------------------------------------------------


def test_the_project_page_renders_every_chart_with_its_table_and_csv_link(client):
    add("default", "a", D1)
    body = client.get("/projects/default/insights/?from=2026-03-01&to=2026-03-03").content.decode()
    assert "<html" in body
    for slug in insights.CHARTS:
        assert f'id="chart-{slug}"' in body
        assert f"/projects/default/insights/?from=2026-03-01&amp;to=2026-03-03&amp;format=csv&amp;chart={slug}" in body
    assert body.count("<table") == 4 and body.count("<svg") == 4
    assert "for 1 batch" in body and "genai-prices 0.2.3" in body and "usage dashboard" in body
    assert "style=" not in body


def test_htmx_gets_only_the_charts_and_a_bad_date_is_a_message(client):
    response = client.get("/projects/default/insights/?from=nope", headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body and 'id="insights-body"' in body
    assert "must be a date like 2026-01-31, not “nope”" in body
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_a_chart_downloads_as_csv(client):
    add("default", "a", D1, counts=(10, 7, 3))
    response = client.get("/projects/default/insights/?from=2026-03-01&to=2026-03-02&format=csv&chart=requests")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="insights-default-requests-2026-03-01-2026-03-02.csv"'
    assert response.content.decode() == "day,completed,failed\n2026-03-01,7,3\n2026-03-02,0,0\n"
    assert client.get("/insights/?format=csv&chart=nope").status_code == 400


def test_zero_and_many_days_render_on_the_page(client):
    assert client.get("/insights/").status_code == 200
    response = client.get("/insights/?from=2025-12-01&to=2026-11-30")
    assert response.status_code == 200 and "(365 days)" in response.content.decode()


@pytest.fixture
def alpha_and_secret(write_projects, proxy_mode):
    write_projects(
        '[projects.alpha]\nname = "Alpha"\napi_key_env = "KEY_ALPHA"\nviewer_groups = ["alpha-team"]\n'
        '[projects.secret]\nname = "Secret"\napi_key_env = "KEY_SECRET"\nviewer_groups = ["secret-team"]\n',
        KEY_ALPHA="sk-alpha", KEY_SECRET="sk-secret",
    )
    add("alpha", "visible", D1, counts=(10, 10, 0), model="gpt-4o-mini")
    add("secret", "hidden", D1, counts=(999, 999, 0), model="secret-model-x")
    add("secret", "hidden2", D1, counts=(5, 5, 0), model="gpt-4o-mini")
    return proxy_mode("a@example.com", groups=["alpha-team"])


def test_a_hidden_projects_data_never_shows_in_all_insights(client, alpha_and_secret):
    query = "from=2026-03-01&to=2026-03-01"
    body = client.get(f"/insights/?{query}", headers=alpha_and_secret).content.decode()
    assert "Alpha" in body and "Secret" not in body and "secret-model-x" not in body
    assert "for 1 batch" in body and "999" not in body
    csv_body = client.get(f"/insights/?{query}&format=csv&chart=requests", headers=alpha_and_secret).content.decode()
    assert csv_body == "day,completed,failed\n2026-03-01,10,0\n"
    assert client.get(f"/projects/secret/insights/?{query}", headers=alpha_and_secret).status_code == 404
    assert client.get(f"/projects/secret/insights/?{query}&format=csv&chart=cost", headers=alpha_and_secret).status_code == 404
    both = {"X-Forwarded-Email": "b@example.com", "X-Forwarded-Groups": "alpha-team,secret-team"}
    assert "for 3 batches" in client.get(f"/insights/?{query}", headers=both).content.decode()
    nobody = {"X-Forwarded-Email": "c@example.com", "X-Forwarded-Groups": "other"}
    assert "for 0 batches" in client.get(f"/insights/?{query}", headers=nobody).content.decode()
    assert BatchRecord.objects.count() == 3
