"""The emulator's core: clock, projects and their store, the batch lifecycle, the queue and faults.

Nothing here speaks HTTP; the provider modules (``emulator.openai``, ``emulator.azure``,
``emulator.anthropic``, ``emulator.admin``) render its records in each API's shape.
"""

from .model import CANCELLABLE, ENDPOINTS, FILE_PURPOSES, PROVIDERS, TERMINAL, WINDOW_SECS
from .store import EmulatorState, project_id

__all__ = ["CANCELLABLE", "ENDPOINTS", "FILE_PURPOSES", "PROVIDERS", "TERMINAL", "WINDOW_SECS", "EmulatorState",
           "project_id"]
