"""With no API key, the run command starts the emulator and every page says so."""

import pytest


@pytest.mark.django_db
def test_every_page_says_it_is_showing_the_emulator_in_demo_mode(client, upstream, settings):
    settings.DASHBOARD_EMULATOR = True
    batch_id = upstream.state.list_batches()[0]["id"]
    pages = ["/projects/default/batches/", f"/projects/default/batches/{batch_id}/"]
    for url in pages:
        body = client.get(url).content.decode()
        assert "built-in <strong>emulator</strong>, not a real OpenAI account" in body


@pytest.mark.django_db
def test_no_emulator_banner_when_talking_to_a_real_upstream(client, upstream, settings):
    settings.DASHBOARD_EMULATOR = False
    body = client.get("/projects/default/batches/").content.decode()
    assert "emulator" not in body.lower()


def test_root_redirects_to_the_batch_list(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/projects/default/batches/"
