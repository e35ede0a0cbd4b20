"""OpenAI's shape: the Batch API (``batches``) and the Files API (``files``) under ``/v1``."""

from . import batches, files

ROUTES = batches.ROUTES + files.ROUTES
