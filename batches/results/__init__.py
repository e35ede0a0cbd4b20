"""A batch's results, split by job: reading files (``lines``), what one result line becomes
(``records``), the join by custom_id (``join``), the join kept for a finished batch (``kept``), a page
(``page``) and the retry file (``retry``)."""

from .kept import kept_join
from .page import ResultsPage, ResultsQueryForm, results_page
from .prepare import page_or_preview, prepare_results
from .records import ResultRow, summarize_body
from .retry import iter_retry_lines, write_retry_file

__all__ = [
    "ResultRow",
    "ResultsPage",
    "ResultsQueryForm",
    "iter_retry_lines",
    "kept_join",
    "page_or_preview",
    "prepare_results",
    "results_page",
    "summarize_body",
    "write_retry_file",
]
