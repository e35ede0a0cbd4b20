"""OpenAI-compatible Batch + Files API emulator (standard library only).

    from emulator import EmulatorServer
    with EmulatorServer(port=0, api_key="sk-emulator", speed=1.0, seed=True) as srv:
        srv.base_url  # http://127.0.0.1:<port>/v1

Several projects: ``EmulatorServer(api_keys={"default": "sk-a", "research": "sk-b"})``.
See emulator/README.md for projects, webhooks, the bulk seed and reset.
"""

from .server import EmulatorServer
from .state import EmulatorState

__all__ = ["EmulatorServer", "EmulatorState"]
