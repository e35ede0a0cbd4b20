"""/search/: the same filters across every project the person may see; nothing of a hidden project,
not even a count."""

from __future__ import annotations

import re

import pytest

from find_factory import make, synced
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

ROW_ID = re.compile(r'<tr id="row-([^"]+)"')
ALICE = {"X-Forwarded-Email": "alice@example.com", "X-Forwarded-Groups": "ml-team"}
BOB = {"X-Forwarded-Email": "bob@example.com", "X-Forwarded-Groups": "ops, secret-team"}


@pytest.fixture
def projects(write_projects, proxy_mode):
    """Three projects: "open" (everyone), "ml" (ml-team), "secret" (secret-team)."""
    write_projects(
        '[projects.open]\nname = "Open"\napi_key_env = "K_OPEN"\n'
        '[projects.ml]\nname = "ML"\napi_key_env = "K_ML"\nviewer_groups = ["ml-team"]\n'
        '[projects.secret]\nname = "Secret Stuff"\napi_key_env = "K_SECRET"\nviewer_groups = ["secret-team"]\n',
        K_OPEN="sk-k_open", K_ML="sk-k_ml", K_SECRET="sk-k_secret",
    )
    for slug in ("open", "ml", "secret"):
        synced(slug)
    make("open", id="batch_o1", status="failed", created_at=1_700_000_100)
    make("open", id="batch_o2", status="completed", created_at=1_700_000_200)
    make("ml", id="batch_m1", status="failed", created_at=1_700_000_300, metadata={"team": "search"})
    make("secret", id="batch_s1", status="failed", created_at=1_700_000_400, metadata={"team": "search"})
    make("secret", id="batch_s2", status="expired", created_at=1_700_000_500)


def ids(body):
    return ROW_ID.findall(body)


def test_search_lists_every_visible_project_with_a_project_column(client, projects):
    body = client.get("/search/?status=failed", headers=ALICE).content.decode()
    assert ids(body) == ["batch_m1", "batch_o1"]
    assert '<td class="col-project"><a href="/projects/ml/batches/">ML</a></td>' in body


def test_a_hidden_project_never_appears_not_even_in_counts(client, projects):
    body = client.get("/search/", headers=ALICE).content.decode()
    assert ids(body) == ["batch_m1", "batch_o2", "batch_o1"]
    assert "Secret Stuff" not in body and "batch_s" not in body and "/projects/secret/" not in body
    # Per-status chips and totals count only visible projects: 3 batches, 2 failed, no expired.
    assert re.search(r'>all <span class="find-count">3</span>', body)
    assert re.search(r'>failed <span class="find-count">2</span>', body)
    assert ">expired <span" not in body


def test_counts_per_project(client, projects):
    body = client.get("/search/?status=failed", headers=BOB).content.decode()
    assert ids(body) == ["batch_s1", "batch_o1"]
    rows = re.findall(r'<td><a href="([^"]+)">([^<]+)</a> <code>[^<]+</code></td>\s*<td>(\d+) <span class="muted">of (\d+)</span>', body)
    assert rows == [
        ("/projects/open/batches/?status=failed", "Open", "1", "2"),
        ("/projects/secret/batches/?status=failed", "Secret Stuff", "1", "2"),
    ]
    assert "batch_m1" not in body and ">ML<" not in body


def test_filters_work_across_projects(client, projects):
    body = client.get("/search/?meta=team:search", headers=BOB).content.decode()
    assert ids(body) == ["batch_s1"]
    body = client.get("/search/?q=batch_&sort=created", headers=BOB).content.decode()
    assert ids(body) == ["batch_o1", "batch_o2", "batch_s1", "batch_s2"]


def test_search_pages_with_a_cursor_naming_the_project(client, projects):
    body = client.get("/search/?sort=created&limit=1", headers=BOB).content.decode()
    assert ids(body) == ["batch_o1"]
    seen = list(ids(body))
    nxt = re.search(r'rel="next" href="([^"]+)"', body).group(1).replace("&amp;", "&")
    assert "after=1700000100,batch_o1,open" in nxt
    while nxt:
        body = client.get(nxt, headers=BOB).content.decode()
        seen += ids(body)
        match = re.search(r'rel="next" href="([^"]+)"', body)
        nxt = match.group(1).replace("&amp;", "&") if match else None
    assert seen == ["batch_o1", "batch_o2", "batch_s1", "batch_s2"]


def test_a_person_without_projects_sees_none(client, projects):
    body = client.get("/search/?status=failed", headers={"X-Forwarded-Email": "eve@example.com", "X-Forwarded-Groups": "nobody"}).content.decode()
    assert ids(body) == ["batch_o1"]  # "open" has no viewer groups: everyone signed in sees it
    assert "batch_m1" not in body and "batch_s1" not in body


def test_search_htmx_gets_the_partial(client, projects):
    response = client.get("/search/?status=failed", headers={**ALICE, **HTMX})
    body = response.content.decode()
    assert "<html" not in body and body.lstrip().startswith('<section id="batch-table"')
    assert 'hx-swap-oob="true"' in body


def test_search_without_sign_in_is_refused(client, projects):
    assert client.get("/search/").status_code == 401


def test_search_bad_values_are_messages(client, projects):
    response = client.get("/search/?status=nope&after=1,batch_x", headers=ALICE)
    assert response.status_code == 400
    body = response.content.decode()
    assert "There is no status" in body and "not one this view wrote" in body
