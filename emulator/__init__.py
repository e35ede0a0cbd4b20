"""OpenAI-compatible Batch + Files API emulator, with Anthropic Message Batches and Azure OpenAI shapes
(standard library only).

    from emulator import EmulatorServer
    with EmulatorServer(port=0, api_key="sk-emulator", speed=1.0, seed=True) as srv:
        srv.base_url  # http://127.0.0.1:<port>/v1

Several projects: ``EmulatorServer(api_keys={"default": "sk-a", "research": "sk-b"})``; other providers:
``anthropic_keys={...}``, ``azure_keys={...}``. See emulator/README.md for every option and control endpoint.
"""

from .core import EmulatorState
from .server import EmulatorServer

__all__ = ["EmulatorServer", "EmulatorState"]
