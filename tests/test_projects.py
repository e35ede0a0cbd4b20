"""Several projects in one dashboard: configuration, URLs, access, isolation, audit and cache."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from batches.checks import check_projects
from batches.models import AuditEntry
from batches.projects import ProjectsConfigError, all_projects, parse_projects

pytestmark = pytest.mark.django_db

ANYONE = {"X-Forwarded-Email": "ann@example.com", "X-Forwarded-Groups": "ml-team"}
RESEARCHER = {"X-Forwarded-Email": "rita@example.com", "X-Forwarded-Groups": "research"}
ONCALL = {"X-Forwarded-Email": "olga@example.com", "X-Forwarded-Groups": "research,research-oncall"}


def problems_of(text: str, **env) -> list[str]:
    with pytest.raises(ProjectsConfigError) as err:
        parse_projects(text, environ=env)
    return err.value.problems


# -- configuration -------------------------------------------------------------------------------


def test_without_a_file_the_openai_variables_are_the_one_project_default(settings):
    settings.DASHBOARD_PROJECTS_FILE = ""
    settings.OPENAI_API_KEY = "sk-one"
    (project,) = all_projects()
    assert project.slug == "default" and project.api_key == "sk-one" and project.base_url == settings.OPENAI_BASE_URL


def test_a_file_defines_projects_in_order_with_every_field():
    projects = parse_projects(
        """
[projects.prod]
name = "Production"
api_key_env = "K1"
base_url = "https://example.test/v1/"
organization = "org-1"
project = "proj_1"
webhook_secret_env = "S1"
viewer_groups = ["ml-team"]
operator_groups = ["ml-oncall"]

[projects.aaa]
api_key_env = "K2"
""",
        environ={"K1": "sk-1", "K2": "sk-2", "S1": "whsec_x"},
    )
    prod, second = projects
    assert [p.slug for p in projects] == ["prod", "aaa"]  # file order, not alphabetical
    assert prod.name == "Production" and prod.api_key == "sk-1" and prod.base_url == "https://example.test/v1"
    assert prod.organization == "org-1" and prod.project_id == "proj_1" and prod.webhook_secret == "whsec_x"
    assert prod.viewer_groups == {"ml-team"} and prod.operator_groups == {"ml-oncall"}
    assert second.name == "aaa" and second.viewer_groups == frozenset() and second.operator_groups is None
    assert "sk-1" not in repr(prod) and "whsec_x" not in repr(prod)


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ('[projects.p]\nname = "P"\n', {}, "project “p”: api_key_env is required"),
        ('[projects.p]\napi_key_env = "NOPE"\n', {}, "project “p”: api_key_env names NOPE, which is missing or empty"),
        ('[projects.p]\napi_key_env = "K"\n', {"K": "  "}, "project “p”: api_key_env names K, which is missing or empty"),
        ('[projects.Prod]\napi_key_env = "K"\n', {"K": "sk"}, "project “Prod”: the slug must match"),
        ('[projects.p]\napi_key_env = "K"\ncolour = "red"\n', {"K": "sk"}, "project “p”: unknown field(s) colour"),
        ('[projects.a]\napi_key_env = "K"\n[projects.b]\napi_key_env = "K2"\n', {"K": "sk", "K2": "sk"},
         "project “b”: uses the same API key as project “a”"),
        ('[projects.p\napi_key_env = "K"\n', {"K": "sk"}, "not valid TOML"),
        ('[projects.p]\napi_key_env = "K"\nviewer_groups = "ml"\n', {"K": "sk"}, "project “p”: viewer_groups must be a list"),
        ("", {}, "defines no project"),
    ],
)
def test_a_bad_file_is_refused_naming_the_project_and_the_field(text, env, expected):
    assert any(expected in problem for problem in problems_of(text, **env))


def test_a_bad_file_is_a_system_check_error_so_the_dashboard_refuses_to_start(write_projects):
    write_projects('[projects.p]\napi_key_env = "MISSING_KEY_VAR"\n')
    errors = check_projects(None)
    assert [e.id for e in errors] == ["batches.E010"]
    assert "MISSING_KEY_VAR" in errors[0].msg
    with pytest.raises(SystemCheckError):
        call_command("check")


def test_an_unreadable_file_is_a_system_check_error(settings, tmp_path):
    settings.DASHBOARD_PROJECTS_FILE = str(tmp_path / "absent.toml")
    (error,) = check_projects(None)
    assert "cannot be read" in error.msg


# -- URLs ---------------------------------------------------------------------------------------


def test_old_urls_redirect_to_the_same_page_of_the_default_project_with_the_query_string(client):
    response = client.get("/batches/?after=batch_abc&limit=5")
    assert response.status_code == 302
    assert response["Location"] == "/projects/default/batches/?after=batch_abc&limit=5"
    response = client.get("/batches/batch_1/results/?filter=failed&page=2")
    assert response.status_code == 302
    assert response["Location"] == "/projects/default/batches/batch_1/results/?filter=failed&page=2"


def test_old_urls_go_to_the_first_project_of_the_file(client, two_projects, write_projects):
    write_projects('[projects.alpha]\napi_key_env = "TEST_KEY_DEFAULT"\n[projects.beta]\napi_key_env = "TEST_KEY_RESEARCH"\n')
    response = client.get("/batches/new/", headers=ANYONE)
    assert response["Location"] == "/projects/alpha/batches/new/"


def test_the_front_door_opens_the_first_project_the_person_may_see(client, two_projects, write_projects):
    write_projects(
        '[projects.research]\napi_key_env = "TEST_KEY_RESEARCH"\nviewer_groups = ["research"]\n'
        '[projects.default]\napi_key_env = "TEST_KEY_DEFAULT"\n'
    )
    assert client.get("/", headers=RESEARCHER)["Location"] == "/projects/research/batches/"
    assert client.get("/", headers=ANYONE)["Location"] == "/projects/default/batches/"


# -- access -------------------------------------------------------------------------------------


def test_a_hidden_project_answers_404_on_every_page_with_no_upstream_call(client, two_projects):
    research_batch = two_projects.state.list_batches(project="research")[0]["id"]
    two_projects.state.reset_counts()
    for url in (
        "/projects/research/batches/",
        f"/projects/research/batches/{research_batch}/",
        f"/projects/research/batches/{research_batch}/results/",
        f"/projects/research/batches/{research_batch}/files/output.jsonl",
        "/projects/research/batches/new/",
        "/projects/nonexistent/batches/",
    ):
        response = client.get(url, headers=ANYONE)
        assert response.status_code == 404, url
        assert "Research" not in response.content.decode()
    response = client.post(f"/projects/research/batches/{research_batch}/cancel/", headers=ANYONE)
    assert response.status_code == 404
    assert two_projects.state.total_requests() == 0
    assert not AuditEntry.objects.exists()


def test_a_hidden_project_is_absent_from_the_switcher_and_the_overview(client, two_projects):
    body = client.get("/projects/", headers=ANYONE).content.decode()
    assert "Production" in body and "Research" not in body and "/projects/research/" not in body
    body = client.get("/projects/default/batches/", headers=ANYONE).content.decode()
    assert "Research" not in body and "/projects/research/" not in body
    body = client.get("/projects/default/batches/", headers=RESEARCHER).content.decode()
    assert 'href="/projects/research/batches/"' in body and "Production" in body


def test_the_switcher_keeps_the_kind_of_page(client, two_projects):
    body = client.get("/projects/default/batches/new/", headers=ONCALL).content.decode()
    assert 'href="/projects/research/batches/new/"' in body


def test_operators_are_per_project(client, two_projects):
    research_running = next(b["id"] for b in two_projects.state.list_batches(project="research") if b["status"] == "in_progress")
    page = client.get(f"/projects/research/batches/{research_running}/", headers=RESEARCHER).content.decode()
    assert "/cancel/" not in page and "read-only" in page
    refused = client.post(f"/projects/research/batches/{research_running}/cancel/", headers=RESEARCHER)
    assert refused.status_code == 403
    page = client.get(f"/projects/research/batches/{research_running}/", headers=ONCALL).content.decode()
    assert f"/projects/research/batches/{research_running}/cancel/" in page
    done = client.post(f"/projects/research/batches/{research_running}/cancel/", headers=ONCALL)
    assert done.status_code == 302
    assert two_projects.state.get_batch(research_running, project="research")["status"] == "cancelling"
    # Without operator_groups the global rule applies (none set: everyone signed in may act).
    page = client.get("/projects/default/batches/new/", headers=RESEARCHER)
    assert page.status_code == 200


# -- isolation ----------------------------------------------------------------------------------


def asked(state) -> dict[str, int]:
    """The emulator's projects that received requests since its counts were reset (others the shared
    emulator holds, from other test files, received none)."""
    return {project: n for project, n in state.stats()["requests_by_project"].items() if n}


def test_each_project_reads_with_its_own_key_and_sees_only_its_batches(client, two_projects):
    state = two_projects.state
    default_ids = {b["id"] for b in state.list_batches(project="default")}
    research_ids = {b["id"] for b in state.list_batches(project="research")}
    assert default_ids and research_ids and not default_ids & research_ids
    state.reset_counts()
    body = client.get("/projects/research/batches/?limit=100", headers=RESEARCHER).content.decode()
    assert asked(state) == {"research": 1}
    assert any(batch_id in body for batch_id in research_ids)
    assert not any(batch_id in body for batch_id in default_ids)


def test_a_batch_of_one_project_opened_under_another_shows_the_other_projects_404(client, two_projects):
    state = two_projects.state
    default_batch = state.list_batches(project="default")[0]["id"]
    state.reset_counts()
    response = client.get(f"/projects/research/batches/{default_batch}/", headers=RESEARCHER)
    assert response.status_code == 404
    assert "in project Research" in response.content.decode()
    assert asked(state) == {"research": 1}


def test_the_read_cache_never_serves_one_projects_page_under_another(client, two_projects, settings):
    settings.DASHBOARD_CACHE_SECONDS = 60
    state = two_projects.state
    first_default = state.list_batches(project="default")[0]["id"]
    first_research = state.list_batches(project="research")[0]["id"]
    a = client.get("/projects/default/batches/", headers=RESEARCHER).content.decode()
    b = client.get("/projects/research/batches/", headers=RESEARCHER).content.decode()
    assert first_default in a and first_default not in b
    assert first_research in b and first_research not in a
    state.reset_counts()
    client.get("/projects/default/batches/", headers=RESEARCHER)
    client.get("/projects/research/batches/", headers=RESEARCHER)
    assert state.total_requests() == 0  # both served from the cache, each under its own key


# -- audit --------------------------------------------------------------------------------------


def test_audit_rows_carry_the_project_and_the_audit_page_shows_only_visible_projects(client, two_projects):
    state = two_projects.state
    research_running = next(b["id"] for b in state.list_batches(project="research") if b["status"] == "in_progress")
    default_running = next(b["id"] for b in state.list_batches(project="default") if b["status"] == "in_progress")
    client.post(f"/projects/research/batches/{research_running}/cancel/", headers=ONCALL)
    client.post(f"/projects/default/batches/{default_running}/cancel/", headers=ANYONE)
    assert set(AuditEntry.objects.values_list("project", "batch_id")) == {
        ("research", research_running),
        ("default", default_running),
    }
    outsider = client.get("/audit/", headers=ANYONE).content.decode()
    assert default_running in outsider and research_running not in outsider
    insider = client.get("/audit/?project=research", headers=ONCALL).content.decode()
    assert research_running in insider and default_running not in insider
    refused = client.get("/audit/?project=research", headers=ANYONE).content.decode()
    assert research_running not in refused and "not a member" in refused


def test_switching_from_the_insights_of_every_project_opens_that_projects_insights(client, two_projects):
    body = client.get("/insights/", headers=RESEARCHER).content.decode()
    assert 'href="/projects/research/insights/"' in body
