"""ID helpers matching the shapes seen on the real API (see NOTES.md section 7)."""

import random
import secrets
import string

_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_sysrand = random.SystemRandom()


def _rng(rng):
    return rng if rng is not None else _sysrand


def batch_id(rng=None):
    return "batch_" + "%032x" % _rng(rng).getrandbits(128)


def file_id(rng=None):
    r = _rng(rng)
    return "file-" + "".join(r.choice(_BASE62) for _ in range(22))


def hex_id(prefix, n=32, rng=None):
    if rng is None:
        return prefix + secrets.token_hex(n // 2)
    return prefix + ("%0" + str(n) + "x") % rng.getrandbits(4 * n)


def request_id():
    return "req_" + secrets.token_hex(16)
