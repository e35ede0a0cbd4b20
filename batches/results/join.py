"""The join: a batch's input, output and error files matched by ``custom_id``, in one pass over each.

Output order is not input order (NOTES.md §6.3), and a request's result is in the output file *or*
the error file. The join gives every request a place (``position``, from 0): the input's requests in
input order, then the results whose ``custom_id`` is not in the input, in the order they were read.
A request's first result line is its result (a second one for the same ``custom_id`` is passed over);
a request without one has no result. When the input file is gone (expired or deleted), results keep
the order they were read in.

Memory: the input's custom_ids and one line at a time. This is the only place that matches results to
requests: the kept join of a finished batch (``kept.py``) writes what it yields, a page of an
unfinished batch (``page.py``) reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from .. import selectors
from ..projects import Project
from ..upstream import Batch, UsageTally, UpstreamNotFound
from .lines import file_objects
from .records import outcome_of


class Joined(NamedTuple):
    position: int
    custom_id: str
    input_line: int | None
    #: The output or error line of the request; None: it has no result.
    record: dict | None


class FileJoin:
    """Iterate it (once) for the :class:`Joined` requests, in no particular order of position; after
    that, :attr:`input_available` says whether the input file could be read and :attr:`size` how
    many positions there are (0..size-1, each yielded once)."""

    def __init__(self, project: Project, batch: Batch) -> None:
        self.project = project
        self.batch = batch
        self.input_available = False
        self.size = 0
        #: The usage of the successful result lines per model, once iterated (for a batch that reports none).
        self.usage: dict[str, UsageTally] = {}

    def _input(self) -> tuple[list[str], list[int]]:
        """The custom_id and line number of each request of the input file ([] without one)."""
        ids: list[str] = []
        lines: list[int] = []
        if not self.batch.input_file_id:
            return ids, lines
        try:
            for line in file_objects(self.project, self.batch.input_file_id):
                custom_id = line.obj.get("custom_id")
                if isinstance(custom_id, str):
                    ids.append(custom_id)
                    lines.append(line.number)
        except UpstreamNotFound:
            return [], []
        self.input_available = True
        return ids, lines

    def __iter__(self) -> Iterator[Joined]:
        input_ids, input_lines = self._input()
        positions: dict[str, int] = {}
        for position, custom_id in enumerate(input_ids):
            positions.setdefault(custom_id, position)
        answered = bytearray(len(input_ids))
        others: set[str] = set()
        next_position = len(input_ids)
        # The output and error files, or a provider's results file: the same line shape either way.
        records = selectors.result_records(self.project, self.batch)
        for record in records:
            custom_id = record.get("custom_id")
            if not isinstance(custom_id, str):
                continue
            position = positions.get(custom_id)
            if position is not None:
                if not answered[position]:
                    answered[position] = 1
                    yield Joined(position, custom_id, input_lines[position], record)
            elif custom_id not in others:
                others.add(custom_id)
                yield Joined(next_position, custom_id, None, record)
                next_position += 1
        self.usage = records.usage
        for position, custom_id in enumerate(input_ids):
            if not answered[position]:
                yield Joined(position, custom_id, input_lines[position], None)
        self.size = next_position


def result_outcomes(project: Project, batch: Batch) -> dict[str, str]:
    """custom_id -> the outcome of its first result line (output and error files, or results file)."""
    outcomes: dict[str, str] = {}
    for record in selectors.result_records(project, batch):
        custom_id = record.get("custom_id")
        if isinstance(custom_id, str):
            outcomes.setdefault(custom_id, outcome_of(record))
    return outcomes
