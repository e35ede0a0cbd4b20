"""Page weight: what a browser with an empty cache downloads for the list page, compressed."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
    "Accept-Encoding": "gzip, deflate, br",
    "User-Agent": "Mozilla/5.0 (bench) Chrome/156",
}


class AssetParser(HTMLParser):
    """Every URL the page makes a browser fetch: stylesheets, scripts, images, icons, preloads."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "link" and a.get("href") and set((a.get("rel") or "").split()) & {
            "stylesheet", "icon", "preload", "modulepreload", "manifest", "apple-touch-icon",
        }:
            self.assets.append(a["href"])
        elif tag in {"script", "img", "iframe", "source", "audio", "video"} and a.get("src"):
            self.assets.append(a["src"])


def _fetch(client: httpx.Client, url: str) -> dict:
    with client.stream("GET", url, headers=BROWSER_HEADERS) as response:
        wire = sum(len(chunk) for chunk in response.iter_raw())
        headers_bytes = sum(len(k) + len(v) + 4 for k, v in response.headers.raw) + 17
        return {
            "url": url,
            "status": response.status_code,
            "body_bytes": wire,
            "header_bytes": headers_bytes,
            "content_encoding": response.headers.get("content-encoding", "identity"),
            "cache_control": response.headers.get("cache-control", ""),
        }


def page_weight(base_url: str, page: str = "/projects/default/batches/") -> dict:
    origin = urlsplit(base_url)
    with httpx.Client(timeout=30) as client:  # no cookies, no cache: a cold visit
        page_url = urljoin(base_url, page)
        html_response = client.get(page_url, headers=BROWSER_HEADERS)
        html_response.raise_for_status()
        parser = AssetParser()
        parser.feed(html_response.text)
        document = _fetch(client, page_url)
        assets, foreign = [], []
        for src in dict.fromkeys(parser.assets):
            url = urljoin(page_url, src)
            parts = urlsplit(url)
            if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
                foreign.append(url)
                continue
            assets.append(_fetch(client, url))

    def immutable(entry: dict) -> bool:
        cc = entry["cache_control"].lower()
        max_age = next((int(p.split("=")[1]) for p in cc.replace(" ", "").split(",") if p.startswith("max-age=")), 0)
        return "immutable" in cc and max_age >= 365 * 24 * 3600

    body = document["body_bytes"] + sum(a["body_bytes"] for a in assets)
    headers = document["header_bytes"] + sum(a["header_bytes"] for a in assets)
    return {
        "page": page,
        "document": document,
        "document_uncompressed_bytes": len(html_response.content),
        "assets": assets,
        "foreign_assets": foreign,
        "total_body_bytes": body,
        "total_bytes_with_headers": body + headers,
        "all_assets_ok": all(a["status"] == 200 for a in assets),
        "all_assets_compressed": all(
            a["content_encoding"] in {"gzip", "br"} for a in assets if a["body_bytes"] > 1024
        ),
        "all_assets_immutable": all(immutable(a) for a in assets),
    }
