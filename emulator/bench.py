"""Timing print for the bulk seed: python -m emulator.bench [N]  (default 200,000 batches, one project).

Prints the seed time, peak RSS, the latency of a list page deep in the list (in-process and over
HTTP), and reset times. Numbers, not assertions: run it on a quiet machine.
"""

import gc
import http.client
import resource
import sys
import time

from .server import EmulatorServer


def main(argv=None):
    n = int((argv or sys.argv[1:] or ["200000"])[0])
    t = time.perf_counter()
    srv = EmulatorServer(port=0, api_key="sk-bench", seed=True, seed_count=n, seed_unfinished=10)
    print("seed (65 planned + %d bulk batches): %.2f s" % (n, time.perf_counter() - t))
    print("peak RSS: %.0f MB" % (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    with srv:
        state = srv.state
        ids = [b["id"] for b in state.list_page(None, 100)[0]]
        keys = state._index[state.default_project]
        deep = keys[len(keys) // 10][1]  # 90% of the way down the newest-first list
        t = time.perf_counter()
        for _ in range(200):
            state.list_page(deep, 100)
        print("list_page(after=<90%% deep>, limit=100) in-process: %.2f ms" % ((time.perf_counter() - t) * 5))
        conn = http.client.HTTPConnection("127.0.0.1", srv.port)
        headers = {"Authorization": "Bearer sk-bench"}
        samples = []
        for _ in range(50):
            t = time.perf_counter()
            conn.request("GET", "/v1/batches?limit=100&after=" + deep, headers=headers)
            body = conn.getresponse().read()
            samples.append(time.perf_counter() - t)
        samples.sort()
        print("GET /v1/batches?after=<90%% deep>&limit=100 over HTTP: median %.2f ms, max %.2f ms (%d bytes)"
              % (samples[25] * 1000, samples[-1] * 1000, len(body)))
        t = time.perf_counter()
        state.reset()
        print("reset with %d batches: %.1f ms" % (len(state.batches), (time.perf_counter() - t) * 1000))
        assert [b["id"] for b in state.list_page(None, 100)[0]] == ids
    del srv, state
    gc.collect()  # otherwise a generation-2 pass over the 200k rows lands inside the next timing
    small = EmulatorServer(port=0, seed=True)
    t = time.perf_counter()
    small.state.reset()
    print("reset of the default seed: %.2f ms" % ((time.perf_counter() - t) * 1000))
    small.stop()


if __name__ == "__main__":
    main()
