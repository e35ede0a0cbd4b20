"""Production settings: refuse unsafe starts, `check --deploy` clean with the documented settings, path prefix."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys

import pytest

from tests.servers import REPO, dashboard_env

DOCS = REPO / "docs" / "deployment.md"


def documented_production_env() -> dict[str, str]:
    """The block between the production-env markers in docs/deployment.md, as a dict."""
    text = DOCS.read_text()
    block = re.search(r"<!-- production-env -->\s*```sh\n(.*?)```\s*<!-- /production-env -->", text, re.S).group(1)
    env = {}
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = line.split("=", 1)
            env[key] = value.strip().strip('"')
    return env


def run(code_or_args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def production(tmp_path, **overrides) -> dict[str, str]:
    env = dashboard_env(tmp_path, DJANGO_SETTINGS_MODULE="dashboard.settings")
    for key in ("DJANGO_SECURE_COOKIES",):
        env.pop(key, None)
    env.update(overrides)
    return env


def settings_value(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    return run(["-c", f"import dashboard.settings as s; print({expression})"], env)


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    env = production(tmp_path, **documented_production_env())
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_documented_settings_turn_on_the_hardening(tmp_path):
    env = production(tmp_path, **documented_production_env())
    result = settings_value(env, "s.DASHBOARD_AUTH, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
                                 "s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.X_FRAME_OPTIONS")
    assert result.stdout.strip() == "proxy True True ('HTTP_X_FORWARDED_PROTO', 'https') True DENY", result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = production(tmp_path, DJANGO_DEBUG="0")
    env.pop("DJANGO_SECRET_KEY")
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_production_defaults_to_the_proxy_sign_in(tmp_path):
    env = production(tmp_path, DJANGO_DEBUG="0")
    env.pop("DASHBOARD_AUTH", None)
    assert settings_value(env, "s.DASHBOARD_AUTH").stdout.strip() == "proxy"


def test_debug_defaults_to_no_sign_in(tmp_path):
    env = production(tmp_path, DJANGO_DEBUG="1")
    env.pop("DASHBOARD_AUTH", None)
    assert settings_value(env, "s.DASHBOARD_AUTH").stdout.strip() == "none"


def test_no_sign_in_in_production_only_when_set_explicitly_and_check_deploy_warns(tmp_path):
    env = production(tmp_path, DJANGO_DEBUG="0", DASHBOARD_AUTH="none", DASHBOARD_OPERATOR_GROUPS="ops")
    assert settings_value(env, "s.DASHBOARD_AUTH, s.DASHBOARD_AUTH_EXPLICIT").stdout.strip() == "none True"
    result = run(["manage.py", "check", "--deploy"], env)
    assert "batches.W001" in result.stderr + result.stdout
    assert "batches.W002" in result.stderr + result.stdout


def test_an_unknown_sign_in_mode_refuses_to_start(tmp_path):
    result = run(["manage.py", "check"], production(tmp_path, DASHBOARD_AUTH="basic"))
    assert result.returncode != 0
    assert "DASHBOARD_AUTH must be one of: proxy, oidc, none." in result.stderr


def test_an_invalid_trusted_proxy_refuses_to_start(tmp_path):
    result = run(["manage.py", "check"], production(tmp_path, DASHBOARD_AUTH="proxy",
                                                    DASHBOARD_TRUSTED_PROXIES="127.0.0.1/32,not-a-cidr"))
    assert result.returncode != 0
    assert "DASHBOARD_TRUSTED_PROXIES holds an invalid CIDR" in result.stderr


def test_an_underscored_identity_header_name_is_a_configuration_error(tmp_path):
    env = production(tmp_path, DASHBOARD_AUTH="proxy", DASHBOARD_AUTH_HEADER="X_Forwarded_Email")
    result = run(["manage.py", "check"], env)
    assert result.returncode != 0
    assert "batches.E001" in result.stderr


def test_trusting_every_address_is_flagged_by_check_deploy(tmp_path):
    env = production(tmp_path, DASHBOARD_AUTH="proxy", DASHBOARD_TRUSTED_PROXIES="0.0.0.0/0")
    assert "batches.W003" in run(["manage.py", "check", "--deploy"], env).stderr


def test_the_path_prefix_sets_the_script_name_and_static_url(tmp_path):
    env = production(tmp_path, DASHBOARD_PATH_PREFIX="/batch-dashboard")
    assert settings_value(env, "s.FORCE_SCRIPT_NAME, s.STATIC_URL").stdout.strip() == (
        "/batch-dashboard /batch-dashboard/static/"
    )


def test_under_a_path_prefix_links_redirects_and_static_files_work(tmp_path):
    """gunicorn as deployed behind a proxy that strips the prefix (docs/deployment.md, example 2)."""
    import urllib.error
    import urllib.request

    from tests.servers import run_gunicorn

    env = production(tmp_path, DASHBOARD_PATH_PREFIX="/batch-dashboard", DASHBOARD_AUTH="proxy",
                     DJANGO_SECURE_COOKIES="0", DJANGO_STATIC_ROOT=str(tmp_path / "static"))
    identity = {"X-Forwarded-Email": "ops@example.com"}

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with run_gunicorn(env) as base_url:
        with opener.open(urllib.request.Request(base_url + "/audit/", headers=identity), timeout=10) as response:
            body = response.read().decode()
        assert 'href="/batch-dashboard/audit/"' in body
        assert 'href="/batch-dashboard/projects/"' in body
        stylesheet = re.search(r'href="(/batch-dashboard/static/batches/dashboard\.[0-9a-f]+\.css)"', body).group(1)
        assert 'href="/projects/' not in body and 'href="/audit/' not in body
        # The proxy strips the prefix before gunicorn sees the path.
        css = stylesheet.removeprefix("/batch-dashboard")
        with opener.open(urllib.request.Request(base_url + css), timeout=10) as response:
            assert response.status == 200 and b".topbar" in response.read()
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(urllib.request.Request(base_url + "/", headers=identity), timeout=10)
        assert redirect.value.code == 302
        assert redirect.value.headers["Location"] == "/batch-dashboard/projects/default/batches/"
