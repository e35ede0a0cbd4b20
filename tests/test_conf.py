"""The dashboard's settings, typed and read once: a changed setting is seen at once, a forgotten one is
named, and the default project has a name even when nobody set one."""

from __future__ import annotations

import ipaddress

import pytest
from django.core.exceptions import ImproperlyConfigured

from batches.conf import conf
from batches.projects import all_projects


def test_settings_are_read_once_and_typed():
    first = conf()
    assert first is conf()
    assert isinstance(first.operator_groups, frozenset) and isinstance(first.trusted_proxies, tuple)
    assert first.trusted_proxies == (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
    assert isinstance(first.cache_seconds, float) and isinstance(first.sync_call_budget, int)


def test_a_changed_setting_is_seen_at_once(settings):
    settings.DASHBOARD_CACHE_SECONDS = 7
    settings.DASHBOARD_OPERATOR_GROUPS = ["ops", "ops"]
    assert conf().cache_seconds == 7.0 and conf().operator_groups == frozenset({"ops"})


def test_a_setting_the_settings_module_forgot_is_named(settings):
    del settings.DASHBOARD_POLL_SECONDS
    with pytest.raises(ImproperlyConfigured, match="The setting DASHBOARD_POLL_SECONDS is not defined"):
        conf()


def test_keys_and_secrets_stay_out_of_its_repr(settings):
    settings.OPENAI_API_KEY = "sk-conf-secret"
    settings.OPENAI_WEBHOOK_SECRET = "whsec_conf_secret"
    shown = repr(conf())
    assert "sk-conf-secret" not in shown and "whsec_conf_secret" not in shown and "cache_seconds=" in shown


def test_the_default_project_is_called_default_unless_named(settings):
    settings.DASHBOARD_PROJECTS_FILE = ""
    assert [p.name for p in all_projects()] == ["Default"]
    settings.DASHBOARD_DEFAULT_PROJECT_NAME = "Production"
    assert [p.name for p in all_projects()] == ["Production"]


def test_a_projects_file_reads_its_key_variables_through_the_settings(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("CONF_TEST_KEY", " sk-from-env ")
    path = tmp_path / "projects.toml"
    path.write_text('[projects.one]\napi_key_env = "CONF_TEST_KEY"\n')
    settings.DASHBOARD_PROJECTS_FILE = str(path)
    assert [(p.slug, p.api_key) for p in all_projects()] == [("one", "sk-from-env")]
