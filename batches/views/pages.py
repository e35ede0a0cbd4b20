"""Rendering a page, or for an htmx request only the part of it that the request swaps."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page(request: HttpRequest, template: str, partial: str, context: dict, *, status: int = 200) -> HttpResponse:
    """``template`` as a whole page; for an htmx request only its partial ``partial`` (what it swaps)."""
    if request.htmx:
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)
