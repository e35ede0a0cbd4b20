"""Thin function views. Each parses its input, calls one service function, and picks the full page or
an htmx partial with a visible ``if``; upstream failures become an honest status and a message."""
