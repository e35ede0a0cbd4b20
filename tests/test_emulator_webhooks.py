"""The emulator's signed batch webhooks, checked by two independent verifiers (standardwebhooks, openai)."""

import base64
import json
import threading

import httpx
import openai
import pytest
import standardwebhooks

from emulator import EmulatorServer
from tests.helpers import LoopbackHTTP, QuietHandler

KEY = "sk-emulator"
SECRET = "whsec_" + base64.b64encode(b"emulator-test-secret-0123456789").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-project-secret-98765432").decode()
NO_DELAY = (0, 0, 0, 0)


class Receiver(LoopbackHTTP):
    """A webhook endpoint on loopback that records every POST and answers from a script of statuses."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)  # answered in order, then 200
        self.received = []
        self.cv = threading.Condition()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.cv:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                              "status": status})
                    receiver.cv.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)
        self.url = self.origin
        self.start()

    def wait_for(self, n, timeout=10):
        with self.cv:
            return self.cv.wait_for(lambda: len(self.received) >= n, timeout)

    def events(self):
        return [json.loads(r["body"]) for r in self.received if r["status"] == 200]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def emulator(receiver, **kw):
    kw.setdefault("webhook_secrets", SECRET)
    kw.setdefault("webhook_retry_delays", NO_DELAY)
    kw.setdefault("seed", False)
    return EmulatorServer(port=0, webhook_url=receiver.url + "/webhooks/openai/{project}/", **kw)


def upload_and_create(c, lines):
    content = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()
    f = c.post("/files", files={"file": ("in.jsonl", content)}, data={"purpose": "batch"}).json()
    r = c.post("/batches", json={"input_file_id": f["id"], "endpoint": "/v1/chat/completions",
                                 "completion_window": "24h"})
    assert r.status_code == 200, r.text
    return r.json()


def request(cid):
    return {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": cid}]}}


def client(s, key=KEY):
    return httpx.Client(base_url=s.base_url, headers={"Authorization": "Bearer " + key}, timeout=10)


def test_every_terminal_transition_sends_one_signed_event_both_verifiers_accept(receiver):
    with emulator(receiver) as s, client(s) as c:
        completed = upload_and_create(c, [request("a"), request("b")])
        failed = upload_and_create(c, ["{not json"])
        cancelled = upload_and_create(c, [request("c")])
        expired = upload_and_create(c, [request("e%d" % i) for i in range(20)])
        s.state.advance(2.5)
        s.state.configure_batch(expired["id"], rate=1 / 86400)
        assert c.post("/batches/%s/cancel" % cancelled["id"]).status_code == 200
        s.state.advance(10)
        for _ in range(5):  # reading and listing many times must not repeat an event
            c.get("/batches/" + completed["id"])
            c.get("/batches")
        s.state.advance(86400)
        assert s.state.wait_for_webhooks()
        assert receiver.wait_for(4)
        deliveries = s.state.webhook_deliveries
        completed_at = s.state.get_batch(completed["id"])["completed_at"]
    got = {}
    verifier = standardwebhooks.Webhook(SECRET)
    sdk = openai.OpenAI(api_key="x", webhook_secret=SECRET)
    for r in receiver.received:
        assert r["path"] == "/webhooks/openai/project1/"
        assert r["headers"]["webhook-id"].startswith("wh_")
        assert r["headers"]["webhook-signature"].startswith("v1,")
        payload = verifier.verify(r["body"], r["headers"])
        event = sdk.webhooks.unwrap(r["body"], r["headers"])
        assert event.id == payload["id"] and event.type == payload["type"] and event.data.id == payload["data"]["id"]
        assert set(payload) == {"id", "object", "type", "created_at", "data"} and payload["object"] == "event"
        assert payload["id"].startswith("evt_")
        got[payload["data"]["id"]] = payload
    assert len(receiver.received) == 4
    assert {bid: e["type"] for bid, e in got.items()} == {
        completed["id"]: "batch.completed", failed["id"]: "batch.failed",
        cancelled["id"]: "batch.cancelled", expired["id"]: "batch.expired"}
    assert got[completed["id"]]["created_at"] == completed_at  # the transition time on the emulator clock
    assert all(d["attempts"] == 1 and d["last_status"] == 200 and d["state"] == "delivered" for d in deliveries)
    assert {d["type"] for d in deliveries} == {e["type"] for e in got.values()}


def test_a_tampered_body_or_wrong_secret_fails_both_verifiers(receiver):
    with emulator(receiver) as s, client(s) as c:
        upload_and_create(c, [request("a")])
        s.state.advance(10)
        assert s.state.wait_for_webhooks() and receiver.wait_for(1)
    r = receiver.received[0]
    tampered = r["body"].replace(b"batch.completed", b"batch.cancelled")
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SECRET).verify(tampered, r["headers"])
    with pytest.raises(openai.InvalidWebhookSignatureError):
        openai.OpenAI(api_key="x", webhook_secret=OTHER_SECRET).webhooks.unwrap(r["body"], r["headers"])


def test_a_receiver_that_answers_500_twice_gets_the_same_event_a_third_time():
    receiver = Receiver(statuses=[500, 500])
    try:
        with emulator(receiver) as s, client(s) as c:
            b = upload_and_create(c, [request("a")])
            s.state.advance(10)
            assert s.state.wait_for_webhooks() and receiver.wait_for(3)
            stats = httpx.get(s.base_url[:-3] + "/_emulator/stats").json()
        assert [r["status"] for r in receiver.received] == [500, 500, 200]
        assert len({r["headers"]["webhook-id"] for r in receiver.received}) == 1
        assert len({r["body"] for r in receiver.received}) == 1
        for r in receiver.received:
            standardwebhooks.Webhook(SECRET).verify(r["body"], r["headers"])
        [d] = stats["webhook_deliveries"]
        assert d["batch_id"] == b["id"] and d["type"] == "batch.completed" and d["project"] == "project1"
        assert d["attempts"] == 3 and d["last_status"] == 200 and d["state"] == "delivered"
        assert SECRET not in json.dumps(stats)
    finally:
        receiver.stop()


def test_an_unreachable_receiver_is_retried_then_given_up():
    receiver = Receiver()
    receiver.stop()  # nothing listens on its port any more
    with emulator(receiver) as s, client(s) as c:
        upload_and_create(c, [request("a")])
        s.state.advance(10)
        assert s.state.wait_for_webhooks()
        [d] = s.state.webhook_deliveries
    assert d["attempts"] == 1 + len(NO_DELAY) and d["last_status"] is None and d["state"] == "failed"
    assert d["last_error"]


def test_each_project_gets_its_own_url_and_secret(receiver):
    keys = {"default": "sk-default", "research": "sk-research"}
    secrets = {"default": SECRET, "research": OTHER_SECRET}
    with emulator(receiver, api_keys=keys, webhook_secrets=secrets) as s:
        for label, key in keys.items():
            with client(s, key) as c:
                upload_and_create(c, [request(label)])
        s.state.advance(10)
        assert s.state.wait_for_webhooks() and receiver.wait_for(2)
        by_project = {d["batch_id"]: d["project"] for d in s.state.webhook_deliveries}
    for r in receiver.received:
        label = r["path"].split("/")[3]
        payload = standardwebhooks.Webhook(secrets[label]).verify(r["body"], r["headers"])
        assert by_project[payload["data"]["id"]] == label
        other = OTHER_SECRET if label == "default" else SECRET
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(other).verify(r["body"], r["headers"])
    assert sorted(r["path"] for r in receiver.received) == ["/webhooks/openai/default/", "/webhooks/openai/research/"]


def test_the_background_ticker_finishes_batches_nobody_reads(receiver):
    with emulator(receiver, speed=200.0, tick_interval=0.02) as s, client(s) as c:
        b = upload_and_create(c, [request("a")])
        assert receiver.wait_for(1, timeout=10)  # ~5 emulated seconds = ~25 ms real; no read, no advance
        assert json.loads(receiver.received[0]["body"])["data"]["id"] == b["id"]
        assert s.state.counts["GET /v1/batches/{id}"] == 0


def test_seeded_history_sends_nothing_and_reset_clears_deliveries(receiver):
    with emulator(receiver, seed=True) as s, client(s) as c:
        assert s.state.wait_for_webhooks() and s.state.webhook_deliveries == []
        running = next(b for b in s.state.list_batches() if b["status"] == "in_progress")
        c.post("/batches/%s/cancel" % running["id"])
        s.state.advance(5)
        assert s.state.wait_for_webhooks()
        assert [d["batch_id"] for d in s.state.webhook_deliveries] == [running["id"]]
        s.state.reset()
        assert s.state.webhook_deliveries == []
        assert s.state.get_batch(running["id"])["status"] == "in_progress"


def test_webhook_configuration_is_checked_up_front(receiver):
    with pytest.raises(ValueError):
        emulator(receiver, webhook_secrets="not-a-secret")
    with pytest.raises(ValueError):
        emulator(receiver, webhook_secrets=None)
    with pytest.raises(KeyError):
        emulator(receiver, webhook_secrets={"nope": SECRET})
