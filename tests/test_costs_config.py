"""Budgets and the organization's admin key in the projects file: defaults, and every bad value a
system check error naming the project and the field."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.checks import run_checks

from batches.costs.config import organization
from batches.project_money import DEFAULT_ALERT_AT, Budget
from batches.projects import ProjectsConfigError, all_projects, parse_projects

pytestmark = pytest.mark.django_db

BASE = """
[projects.prod]
api_key_env = "KEY_PROD"
project = "proj_prod"
"""
ENV = {"KEY_PROD": "sk-prod", "ADMIN": "sk-admin-secret"}


def problems_of(text: str, environ=ENV) -> list[str]:
    with pytest.raises(ProjectsConfigError) as caught:
        parse_projects(text, environ)
    return caught.value.problems


def test_a_budget_with_only_its_amount_takes_the_default_thresholds():
    (project,) = parse_projects(BASE + "[projects.prod.budget]\nmonthly_usd = 500\n", ENV)
    assert project.budget == Budget(monthly_usd=Decimal("500.0"), alert_at=DEFAULT_ALERT_AT, block_at_limit=False, drift_alert=0.15)


def test_a_full_budget_is_read_with_its_thresholds_sorted():
    text = BASE + "[projects.prod.budget]\nmonthly_usd = 250.5\nalert_at = [1.0, 0.25]\nblock_at_limit = true\ndrift_alert = 0.3\n"
    (project,) = parse_projects(text, ENV)
    assert project.budget == Budget(monthly_usd=Decimal("250.5"), alert_at=(0.25, 1.0), block_at_limit=True, drift_alert=0.3)


def test_a_project_without_a_budget_has_none():
    (project,) = parse_projects(BASE, ENV)
    assert project.budget is None


@pytest.mark.parametrize(
    "table, expected",
    [
        ("alert_at = [0.5]", "project “prod”: budget.monthly_usd is required"),
        ("monthly_usd = -5", "project “prod”: budget.monthly_usd must be a number of US dollars above 0, not -5."),
        ('monthly_usd = "500"', "project “prod”: budget.monthly_usd must be a number of US dollars above 0, not '500'."),
        ("monthly_usd = 5\nalert_at = [0.5, 0]", "project “prod”: budget.alert_at must be a list of fractions"),
        ('monthly_usd = 5\nalert_at = "0.5"', "project “prod”: budget.alert_at must be a list of fractions"),
        ('monthly_usd = 5\nblock_at_limit = "yes"', "project “prod”: budget.block_at_limit must be true or false, not 'yes'."),
        ("monthly_usd = 5\ndrift_alert = 0", "project “prod”: budget.drift_alert must be a fraction above 0"),
        ("monthly_usd = 5\nmonthly = 6", "project “prod”: budget: unknown field(s) monthly."),
    ],
)
def test_a_bad_budget_value_is_refused_naming_the_project_and_the_field(table, expected):
    problems = problems_of(BASE + "[projects.prod.budget]\n" + table + "\n")
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_budget_that_is_not_a_table_is_refused():
    assert problems_of(BASE + "budget = 500\n") == ["project “prod”: budget must be a table ([projects.<slug>.budget])."]


def test_the_organization_table_names_the_variable_holding_the_admin_key():
    parse_projects(BASE + '[organization]\nadmin_key_env = "ADMIN"\n', ENV)


@pytest.mark.parametrize(
    "table, expected",
    [
        ("", "[organization]: admin_key_env is required (the environment variable holding an admin key)."),
        ('admin_key_env = "MISSING"', "[organization]: admin_key_env names MISSING, which is missing or empty in the environment."),
        ('admin_key_env = "ADMIN"\nbase_url = "ftp://x"', "[organization]: base_url must start with http:// or https://."),
        ('admin_key_env = "ADMIN"\nkey = "sk"', "[organization]: unknown field(s) key."),
    ],
)
def test_a_bad_organization_table_is_refused_with_a_sentence(table, expected):
    assert expected in problems_of(BASE + "[organization]\n" + table + "\n")


def test_a_bad_budget_stops_the_dashboard_with_a_system_check_error(write_projects):
    write_projects(BASE + "[projects.prod.budget]\nmonthly_usd = 0\n", KEY_PROD="sk-prod")
    errors = [e for e in run_checks() if e.id == "batches.E010"]
    assert [e.msg for e in errors] == [
        "DASHBOARD_PROJECTS_FILE: project “prod”: budget.monthly_usd must be a number of US dollars above 0, not 0."
    ]


def test_the_admin_key_is_read_from_its_variable_and_kept_out_of_repr(write_projects):
    write_projects(BASE + '[organization]\nadmin_key_env = "ADMIN"\nbase_url = "http://127.0.0.1:9/v1/"\n', KEY_PROD="sk-prod",
                   ADMIN="sk-admin-secret")
    found = organization()
    assert (found.admin_key, found.admin_key_env, found.base_url) == ("sk-admin-secret", "ADMIN", "http://127.0.0.1:9/v1")
    assert "sk-admin-secret" not in repr(found)
    assert all_projects()[0].budget is None


def test_without_a_projects_file_there_is_no_organization(settings):
    settings.DASHBOARD_PROJECTS_FILE = ""
    assert organization() is None
