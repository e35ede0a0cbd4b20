"""Jobs: validate+split throughput and peak memory of a big input file, merged results.jsonl of every
line, and the scheduler's database overhead per chunk.

    .venv/bin/python -m bench.jobs [--lines 1000000] [--line-bytes 1000]

Each part runs in its own process, so each peak RSS is that part's alone. Targets (issue #19): at least
100 MB/s and under 200 MB for validate+split and for the merged results of 1M lines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _setup(workdir: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.test_settings")
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/bench.sqlite3"
    sys.path.insert(0, str(REPO))
    import django
    from django.conf import settings

    django.setup()
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": f"{workdir}/storage"}}}
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_file(path: str, lines: int, line_bytes: int) -> None:
    pad = "x" * max(line_bytes - 140, 1)
    with open(path, "w") as out:
        for i in range(lines):
            out.write('{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":'
                      '"gpt-4o-mini","messages":[{"role":"user","content":"%s %d"}]}}\n' % (i, pad, i))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part_split(path: str, workdir: str) -> dict:
    """Check, split and store (FileSystemStorage) the whole file, then create the job's rows."""
    _setup(workdir)
    from batches.jobs import services
    from batches.projects import get_project

    project = get_project("default")
    started = time.perf_counter()
    with open(path, "rb") as handle:
        result = services.ingest_blocks(project, iter(lambda: handle.read(1024 * 1024), b""))
    seconds = time.perf_counter() - started
    assert result.ok, result.errors
    job = services.create_job(project, result, name="bench", actor="bench")
    size = os.path.getsize(path)
    return {"job": job.pk, "mb": size / 1e6, "seconds": seconds, "mb_per_s": size / 1e6 / seconds,
            "chunks": len(result.chunks), "peak_mb": peak_mb()}


def part_results(workdir: str, job_id: int) -> dict:
    """Every home answered (a synthetic output line per request), then results.jsonl streamed."""
    _setup(workdir)
    import orjson

    from batches.jobs import storage
    from batches.jobs.models import Chunk, Job
    from batches.jobs.outcomes import SUCCEEDED, state_byte
    from batches.jobs.answers import results_blocks

    job = Job.objects.get(pk=job_id)
    for home in job.chunks.filter(home__isnull=True):
        local = f"{workdir}/home.jsonl"
        with open(local, "wb") as out:
            for raw in storage.iter_lines(home.input_path):
                custom_id = orjson.loads(raw)["custom_id"]
                out.write(orjson.dumps({"custom_id": custom_id, "response": {"status_code": 200, "request_id": "req_1",
                          "body": {"choices": [{"message": {"content": "ok"}}]}}, "error": None, "batch_id": "batch_1",
                          "attempts": 1}) + b"\n")
        name = storage.save_local(local, storage.path(job.folder, "out", f"{home.number}.jsonl"))
        Chunk.objects.filter(pk=home.pk).update(results_path=name, states=bytes([state_byte(SUCCEEDED, 1)]) * home.requests,
                                                succeeded=home.requests)
    started = time.perf_counter()
    size = lines = 0
    for block in results_blocks(job):
        size += len(block)
        lines += block.count(b"\n")
    seconds = time.perf_counter() - started
    return {"lines": lines, "mb": size / 1e6, "seconds": seconds, "mb_per_s": size / 1e6 / seconds, "peak_mb": peak_mb()}


def part_scheduler(workdir: str, chunks: int = 2000) -> dict:
    """The scheduler's own work per chunk (decide + claim UPDATE), without upstream calls."""
    _setup(workdir)
    from django.utils import timezone

    from batches.jobs import decide, submit
    from batches.jobs.models import Chunk, Job

    job = Job.objects.create(project="default", name="sched", folder="x", endpoint="/v1/chat/completions", total_requests=chunks)
    Chunk.objects.bulk_create(Chunk(job=job, number=n, model="m", requests=1, estimated_tokens=100, input_path="x")
                              for n in range(1, chunks + 1))
    started = time.perf_counter()
    candidates = [decide.Candidate(c.pk, c.model, c.estimated_tokens, c.requests) for c in Chunk.objects.filter(job=job)]
    plan = decide.plan_submissions(candidates, {"m": decide.Queue("m", budget=None, window=chunks)}, 0, per_hour=10**9)
    won = submit.claim(plan.submit, "bench", timezone.now())
    seconds = time.perf_counter() - started
    return {"chunks": len(won), "ms_per_chunk": 1000 * seconds / max(len(won), 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--line-bytes", type=int, default=1000)
    parser.add_argument("--part", choices=["split", "results", "scheduler"])
    parser.add_argument("--workdir")
    parser.add_argument("--job", type=int)
    args = parser.parse_args(argv)
    if args.part:
        outcome = {"split": lambda: part_split(f"{args.workdir}/input.jsonl", args.workdir),
                   "results": lambda: part_results(args.workdir, args.job),
                   "scheduler": lambda: part_scheduler(args.workdir)}[args.part]()
        print(json.dumps(outcome))
        return
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as workdir:
        make_file(f"{workdir}/input.jsonl", args.lines, args.line_bytes)

        def run(part: str, *extra: str) -> dict:
            out = subprocess.run([sys.executable, "-m", "bench.jobs", "--part", part, "--workdir", workdir, *extra],
                                 cwd=REPO, check=True, capture_output=True, text=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        split = run("split")
        print(f"jobs validate+split+store {split['mb']:.0f} MB / {args.lines:,} lines: {split['mb_per_s']:.0f} MB/s "
              f"({split['seconds']:.1f} s, {split['chunks']} chunks), peak {split['peak_mb']:.0f} MB "
              f"(target >= 100 MB/s, < 200 MB)")
        merged = run("results", "--job", str(split["job"]))
        print(f"jobs results.jsonl {merged['lines']:,} lines, {merged['mb']:.0f} MB: {merged['mb_per_s']:.0f} MB/s, "
              f"peak {merged['peak_mb']:.0f} MB (target >= 100 MB/s, < 200 MB)")
        sched = run("scheduler")
        print(f"jobs scheduler overhead: {sched['ms_per_chunk']:.2f} ms per chunk over {sched['chunks']:,} chunks "
              f"(decide + claim, no upstream calls)")


if __name__ == "__main__":
    main()
