"""The emulator's HTTP server: routes by path, then by key (each key is a project of one provider).

    with EmulatorServer(port=0, api_keys={"default": "sk-a"}, anthropic_keys={"claude": "sk-ant-b"},
                        azure_keys={"eu": "az-c"}, admin_keys=["sk-admin-d"]) as srv:
        srv.base_url        # http://127.0.0.1:<port>/v1     (OpenAI; the admin API lives here too)
        srv.root_url        # http://127.0.0.1:<port>        (Anthropic base URL, Azure endpoint)
"""

import re
import socket
import threading
import urllib.parse

from . import admin, anthropic, azure, control, openai
from .core import EmulatorState
from .core.model import FAIL_PERCENT
from .http import ApiError, Handler, Server
from .seed import seed_projects
from .webhooks import DEFAULT_RETRY_DELAYS

LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

ROUTES = [(re.compile(rx), template, methods, kind)
          for rx, template, methods, kind in openai.ROUTES + azure.ROUTES + anthropic.ROUTES + admin.ROUTES
          + control.ROUTES]

NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
          "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
          "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
          "key from https://platform.openai.com/account/api-keys.")


def _mask_key(key):
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * min(len(key) - 7, 40) + key[-4:]


def _bearer(req):
    auth = req.headers.get("Authorization") or ""
    return auth[7:].strip() if auth.lower().startswith("bearer ") else ""


def presented_key(req, kind):
    """The key a request presents, where its provider puts it (provider-specs NOTES.md §1.1, §2.1)."""
    if kind == "anthropic":
        return (req.headers.get("x-api-key") or "").strip() or _bearer(req)
    if kind == "azure":
        return (req.headers.get("api-key") or "").strip() or _bearer(req)
    return _bearer(req)


def project_keys(api_key="sk-emulator", api_keys=None):
    """{label: key} of the OpenAI projects from the constructor arguments (see EmulatorServer)."""
    if api_keys is None:
        return {} if api_key is None else {"project1": api_key}
    if isinstance(api_keys, dict):
        keys = dict(api_keys)
    else:
        keys = {"project%d" % (i + 1): k for i, k in enumerate(api_keys)}
    if not keys:
        raise ValueError("api_keys must name at least one key")
    return keys


def _check_key(label, key):
    if not isinstance(label, str) or not LABEL_RE.match(label):
        raise ValueError("invalid project label %r (letters, digits, '_', '.', '-')" % (label,))
    if not isinstance(key, str) or not key:
        raise ValueError("the key of project %r must be a non-empty string" % label)


class EmulatorServer:
    """An OpenAI-compatible Batch + Files API emulator (plus Anthropic and Azure shapes) in a thread.

    Projects: ``api_key="sk-x"`` is one OpenAI project (label ``project1``); ``api_keys={"default": "sk-a",
    "research": "sk-b"}`` (or a list of keys, labelled ``project1..N``) gives one project per key, each
    with its own seeded data. ``anthropic_keys`` / ``azure_keys`` ({label: key}) add projects served in
    those providers' shapes; ``azure_options`` ({label: {"quirks", "fail_fast", "expire"}}) tunes Azure
    ones. ``admin_keys`` may read the organization costs and usage. ``api_key=None`` without
    ``api_keys``, or ``any_key=True``, lets any other bearer token in as the first project.
    """

    def __init__(self, host="127.0.0.1", port=0, api_key="sk-emulator", speed=1.0, seed=True, verbose=False,
                 api_keys=None, any_key=False, seed_count=0, seed_unfinished=10, webhook_url=None,
                 webhook_secrets=None, webhook_retry_delays=DEFAULT_RETRY_DELAYS, webhook_timeout=5.0,
                 tick_interval=0.5, anthropic_keys=None, azure_keys=None, azure_options=None, admin_keys=None,
                 queue_tokens=None, fail_percent=FAIL_PERCENT, cost_skew=1.0):
        openai_keys = project_keys(api_key, api_keys)
        providers = {}
        keys = {}
        for provider, given in (("openai", openai_keys), ("anthropic", anthropic_keys or {}),
                                ("azure", azure_keys or {})):
            for label, key in given.items():
                _check_key(label, key)
                if label in providers:
                    raise ValueError("project label %r is given twice" % label)
                providers[label] = provider
                keys[label] = key
        self.admin_keys = list(admin_keys or [])
        if len(set(keys.values()) | set(self.admin_keys)) != len(keys) + len(self.admin_keys):
            raise ValueError("two projects cannot share an API key")
        self.host = host
        self.api_keys = keys
        self.api_key = next(iter(openai_keys.values()), None)
        self.key_projects = {k: label for label, k in keys.items()}
        self.any_key = any_key or not keys
        self.verbose = verbose
        labels = list(keys) or ["project1"]
        self.state = EmulatorState(speed=speed, projects=labels, providers=providers, queue_tokens=queue_tokens,
                                   options=dict(azure_options or {}), fail_percent=fail_percent,
                                   cost_skew=cost_skew)
        try:
            seed_projects(self.state, seed=seed, seed_count=seed_count, seed_unfinished=seed_unfinished)
            if webhook_url:
                if not webhook_secrets:
                    raise ValueError("webhook_url needs webhook_secrets (one 'whsec_...' or {label: secret})")
                self.state.configure_webhooks(webhook_url, webhook_secrets, retry_delays=webhook_retry_delays,
                                              timeout=webhook_timeout, tick_interval=tick_interval)
            self._httpd = Server((host, port), Handler, self)
        except BaseException:
            self.state.close()
            raise
        self.port = self._httpd.server_address[1]
        self._thread = None

    @property
    def cost_skew(self):
        """The Admin API bills usage at batch prices x this (kept in the state, so reset restores it)."""
        return self.state.cost_skew

    @cost_skew.setter
    def cost_skew(self, value):
        self.state.cost_skew = float(value)

    @property
    def root_url(self):
        return "http://%s:%d" % (self.host, self.port)

    @property
    def base_url(self):
        return self.root_url + "/v1"

    # ---------------------------------------------------------------- routing
    @staticmethod
    def route(path):
        """(template, {method: handler}, kind, args) of a path; (None, {}, kind guess, ()) when unknown."""
        for rx, template, methods, kind in ROUTES:
            m = rx.match(path)
            if m:
                return template, methods, kind, tuple(urllib.parse.unquote(g) for g in m.groups())
        if path.startswith("/_emulator/"):
            return None, {}, "control", ()
        return None, {}, "azure" if path.startswith("/openai/") else "openai", ()

    def add_key(self, label, key, provider="openai", options=None):
        """A project added at run time (``POST /_emulator/projects``); adding the same one again is a no-op."""
        _check_key(label, key)
        if self.api_keys.get(label) == key and self.state.providers.get(label) == provider:
            if options:
                self.state.set_project_options(label, **options)
            return
        if key in self.key_projects or key in self.admin_keys:
            raise ValueError("two projects cannot share an API key")
        self.state.add_project(label, provider, options)
        self.api_keys[label] = key
        self.key_projects[key] = label

    def key_project(self, req, kind):
        """The project label the request's key selects (any provider), or None."""
        key = presented_key(req, kind)
        if not key:
            return None
        label = self.key_projects.get(key)
        if label is None and self.any_key and kind == "openai":
            label = self.state.default_project
        return label

    def authenticate(self, req, kind):
        """The project of the request's key for a route of ``kind``, or that provider's 401/403."""
        if kind == "admin":
            return admin.authenticate(req, self)
        key = presented_key(req, kind)
        label = self.key_project(req, kind)
        if label is not None and self.state.providers.get(label, "openai") == kind:
            return label
        if kind == "anthropic":
            raise anthropic.auth_error(bool(key))
        if kind == "azure":
            raise azure.auth_error()
        if not key:
            raise ApiError(401, NO_KEY, code="invalid_api_key")
        raise ApiError(401, "Incorrect API key provided: %s. You can find your API key at "
                            "https://platform.openai.com/account/api-keys." % _mask_key(key), code="invalid_api_key")

    # --------------------------------------------------------------- running
    def reset(self):
        self.state.reset()

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="openai-emulator", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self):
        self._httpd.serve_forever(poll_interval=0.1)

    def stop(self):
        self.state.release_hung()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._httpd.sock_lock:
            socks = list(self._httpd.open_sockets)
        for s in socks:  # close idle keep-alive connections
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        self.state.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
