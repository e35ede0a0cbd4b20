"""Oversight over the index: what batches cost (:mod:`.pricing`), when unfinished ones will finish and
which are in trouble (:mod:`.eta`), and day-by-day insights drawn as server-side SVG (:mod:`.insights`,
:mod:`.charts`). Everything here reads the index (``BatchRecord``, ``BatchSample``); nothing calls the
upstream. See docs/oversight.md."""
