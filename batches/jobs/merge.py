"""Taking in a finished chunk: its answers merged into its home chunk's results file (input order),
its lines' states updated, and what is worth another try put into a new chunk (salvage).

Memory stays flat: the batch's output and error files are downloaded to local scratch files and
indexed by ``custom_id`` (an offset per request of one chunk, at most 50,000), the chunk's answers are
written in its own order (which is input order), and the home's new results file is one merge of the
old file with them, line by line. The new file gets a new name; the home row is switched to it with a
conditional UPDATE on the old name, so two workers merging parts of one home never lose each other's
answers (the loser merges again on top of the winner).
"""

from __future__ import annotations

import array
import os
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from django.db import IntegrityError, transaction
from django.db.models import Max

from ..upstream import Batch, BatchClient
from . import storage
from .models import Chunk, Job, JobEvent
from .outcomes import FAILED, RETRY, SUCCEEDED, counts, decide, state_byte

DOWNLOAD_BYTES = 1024 * 1024
MERGE_TRIES = 5


class MergeConflict(Exception):
    """Another worker switched the home's results file first: merge again on top of it."""


@dataclass
class MergeReport:
    succeeded: int = 0
    failed: int = 0
    retry: int = 0
    salvage_chunk: int | None = None


def chunk_lines(chunk: Chunk) -> array.array:
    """The 0-based input line of each of the chunk's requests, in order."""
    if chunk.is_home:
        return array.array("I", range(chunk.first_line, chunk.first_line + chunk.requests))
    return storage.read_line_numbers(chunk.lines_path)


def custom_id_of(raw: bytes) -> str:
    return orjson.loads(raw)["custom_id"]


def make_part(job: Job, home: Chunk, source: Chunk, positions: list[int], *, attempt: int) -> Chunk:
    """An unsaved chunk holding the requests at ``positions`` of ``source`` (files written to storage)."""
    wanted = set(positions)
    numbers = chunk_lines(source)
    lines = array.array("I")
    size = 0
    with storage.LocalScratch() as scratch:
        local = os.path.join(scratch, "part.jsonl")
        with open(local, "wb") as out:
            for position, raw in enumerate(storage.iter_lines(source.input_path)):
                if position in wanted:
                    out.write(raw)
                    size += len(raw)
                    lines.append(numbers[position])
        token = storage.new_folder()[:12]
        input_path = storage.save_local(local, storage.path(job.folder, "retry", f"{token}.jsonl"))
    lines_path = storage.save_bytes(lines.tobytes(), storage.path(job.folder, "retry", f"{token}.lines"))
    return Chunk(
        job=job, home=home, attempt=attempt, model=source.model, requests=len(lines), input_bytes=size,
        # The estimate is the bytes (ingest.estimate_tokens), newline included: a safe upper bound.
        estimated_tokens=size, input_path=input_path, lines_path=lines_path, first_line=lines[0] if lines else 0,
    )


def save_new_chunks(job: Job, parts: list[Chunk]) -> None:
    """Number and insert new chunks (inside the caller's transaction); two racing workers never take one
    number (the unique key refuses the second, which takes the next)."""
    for part in parts:
        for _ in range(MERGE_TRIES):
            top = Chunk.objects.filter(job=job).aggregate(top=Max("number"))["top"]
            part.number = (top or 0) + 1
            try:
                with transaction.atomic():
                    part.save()
                break
            except IntegrityError:
                continue


class _Answers:
    """The batch's output and error lines, downloaded to scratch files, found by custom_id."""

    def __init__(self, client: BatchClient, batch: Batch, scratch: str) -> None:
        self.handles = []
        self.where: dict[str, tuple[int, int]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            local = os.path.join(scratch, f"{file_id[:40]}.jsonl")
            content = client.open_file_content(file_id)
            with open(local, "wb") as out:
                for block in content:
                    out.write(block)
            handle = open(local, "rb")
            which = len(self.handles)
            self.handles.append(handle)
            offset = 0
            for raw in handle:
                if raw.strip():
                    try:
                        custom_id = orjson.loads(raw).get("custom_id")
                    except (ValueError, AttributeError):
                        custom_id = None
                    if isinstance(custom_id, str):
                        self.where[custom_id] = (which, offset)
                offset += len(raw)

    def get(self, custom_id: str) -> dict | None:
        found = self.where.get(custom_id)
        if found is None:
            return None
        handle = self.handles[found[0]]
        handle.seek(found[1])
        return orjson.loads(handle.readline())

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def batch_error(batch: Batch) -> dict:
    """A failed batch's first error as an API-shaped ``error``."""
    first = batch.errors[0] if batch.errors else None
    code = getattr(first, "code", None) or "batch_failed"
    message = getattr(first, "message", None) or f"Batch {batch.id} failed."
    return {"code": code, "message": message}


def _answer_lines(chunk: Chunk, job: Job, batch: Batch | None, answers: _Answers | None, local: str,
                  cancelled: bool, failure: dict | None):
    """Write the chunk's result lines (its order) to ``local``; returns (statuses, retry positions)."""
    statuses = bytearray()
    retry: list[int] = []
    if failure is None and batch is not None and batch.status == "failed":
        failure = batch_error(batch)
    batch_id = batch.id if batch is not None else None
    with open(local, "wb") as out:
        for position, raw in enumerate(storage.iter_lines(chunk.input_path)):
            custom_id = custom_id_of(raw)
            if failure is not None:
                record, status = {"response": None, "error": failure}, FAILED
            else:
                record = answers.get(custom_id)
                status = decide(record, chunk.attempt, job.max_attempts)
            line = {
                "custom_id": custom_id,
                "response": record.get("response") if record else None,
                "error": record.get("error") if record else None,
                "batch_id": batch_id,
                "attempts": chunk.attempt,
            }
            if record is None:
                line["error"] = {"code": "not_run", "message": f"Batch {batch_id} ended ({batch.status}) before this request ran."}
            out.write(orjson.dumps(line) + b"\n")
            statuses.append(status)
            if status == RETRY and not cancelled:
                retry.append(position)
    return statuses, retry


def _placeholder(raw: bytes) -> bytes:
    return orjson.dumps({"custom_id": custom_id_of(raw), "response": None, "error": None, "batch_id": None,
                         "attempts": 0}) + b"\n"


def _old_lines(home: Chunk) -> Iterator[bytes]:
    if home.results_path:
        return storage.iter_lines(home.results_path)
    return (_placeholder(raw) for raw in storage.iter_lines(home.input_path))


def _write_home(home: Chunk, chunk: Chunk, lines: array.array, answers_local: str, statuses: bytearray,
                scratch: str) -> tuple[str, bytes]:
    """The home's new results file (stored) and state bytes, with the chunk's answers in place."""
    states = bytearray(home.states or bytes(home.requests))
    local = os.path.join(scratch, "home.jsonl")
    offsets = iter([number - home.first_line for number in lines])
    statuses_iter = iter(statuses)
    next_offset = next(offsets, -1)
    with open(answers_local, "rb") as answers, open(local, "wb") as out:
        for index, old in enumerate(_old_lines(home)):
            if index == next_offset:
                out.write(answers.readline())
                states[index] = state_byte(next(statuses_iter), chunk.attempt)
                next_offset = next(offsets, -1)
            else:
                out.write(old)
    name = storage.save_local(local, storage.path(home.job.folder, "out", f"{home.number}-{storage.new_folder()[:12]}.jsonl"))
    return name, bytes(states)


def absorb(chunk: Chunk, batch: Batch | None, client: BatchClient | None, *, failure: dict | None = None) -> MergeReport:
    """Merge a chunk whose batch ended (``chunk`` is claimed in state MERGING), or fail every request of
    it with ``failure`` (an API-shaped error; then ``batch`` may be None)."""
    job = chunk.job
    cancelled = job.status == Job.Status.CANCELLED
    lines = chunk_lines(chunk)
    with storage.LocalScratch() as scratch:
        wanted = failure is None and batch is not None and batch.status != "failed"
        answers = _Answers(client, batch, scratch) if wanted else None
        try:
            answers_local = os.path.join(scratch, "answers.jsonl")
            statuses, retry = _answer_lines(chunk, job, batch, answers, answers_local, cancelled, failure)
        finally:
            if answers is not None:
                answers.close()
        salvage = make_part(job, chunk.home or chunk, chunk, retry, attempt=chunk.attempt + 1) if retry else None
        for _ in range(MERGE_TRIES):
            home = Chunk.objects.select_related("job").get(pk=chunk.home_id or chunk.pk)
            new_path, states = _write_home(home, chunk, lines, answers_local, statuses, scratch)
            try:
                _commit(chunk, home, new_path, states, salvage)
            except MergeConflict:
                storage.delete(new_path)
                continue
            storage.delete(home.results_path)
            break
        else:
            raise MergeConflict(f"chunk {chunk.pk}: the home's results kept changing under the merge")
    report = MergeReport(
        succeeded=statuses.count(SUCCEEDED), failed=statuses.count(FAILED), retry=statuses.count(RETRY),
        salvage_chunk=salvage.number if salvage else None,
    )
    return report


def _commit(chunk: Chunk, home: Chunk, new_path: str, states: bytes, salvage: Chunk | None) -> None:
    _pending, succeeded, failed, retrying = counts(states)
    with transaction.atomic():
        switched = Chunk.objects.filter(pk=home.pk, results_path=home.results_path).update(
            results_path=new_path, states=states, succeeded=succeeded, failed=failed, retrying=retrying,
        )
        if switched != 1:
            raise MergeConflict
        Chunk.objects.filter(pk=chunk.pk, state=Chunk.State.MERGING).update(
            state=Chunk.State.DONE, claimed_by="", claim_until=None
        )
        if salvage is not None:
            save_new_chunks(chunk.job, [salvage])
            JobEvent.objects.create(
                job=chunk.job, kind="salvage", chunk_number=salvage.number,
                message=f"{salvage.requests:,} request(s) of chunk {chunk.number} go to chunk {salvage.number} "
                        f"for attempt {salvage.attempt} (batch {chunk.batch_id} ended {chunk.batch_status}).",
            )



def split(chunk: Chunk, reason: str) -> list[Chunk]:
    """Replace a waiting chunk (claimed by the caller) by two halves of the same attempt."""
    half = chunk.requests // 2
    parts = [
        make_part(chunk.job, chunk.home or chunk, chunk, list(range(0, half)), attempt=chunk.attempt),
        make_part(chunk.job, chunk.home or chunk, chunk, list(range(half, chunk.requests)), attempt=chunk.attempt),
    ]
    for part in parts:
        part.file_id = ""
        part.token_limit_hits = chunk.token_limit_hits
    with transaction.atomic():
        Chunk.objects.filter(pk=chunk.pk).update(state=Chunk.State.SPLIT, claimed_by="", claim_until=None)
        save_new_chunks(chunk.job, parts)
        JobEvent.objects.create(
            job=chunk.job, kind="split", chunk_number=chunk.number,
            message=f"Chunk {chunk.number} is split into chunks {parts[0].number} and {parts[1].number}: {reason}",
        )
    return parts
