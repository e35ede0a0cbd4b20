"""Time to first render of the list page in headless Chromium (Performance API, not a stopwatch)."""

from __future__ import annotations

import statistics

CHROMIUM = "/usr/bin/chromium"

# startTime of first-contentful-paint is measured from navigation start (the timeOrigin).
PAINT_JS = """() => {
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const nav = performance.getEntriesByType("navigation")[0];
  return {
    fcp: fcp ? fcp.startTime : null,
    dcl: nav ? nav.domContentLoadedEventEnd : null,
    load: nav ? nav.loadEventEnd : null,
    transfer: nav ? nav.transferSize : null,
  };
}"""


def first_render(url: str, *, runs: int) -> dict:
    from playwright.sync_api import sync_playwright

    cold, warm = [], []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            for _ in range(runs):
                context = browser.new_context()  # empty cache: a first visit
                page = context.new_page()
                for bucket in (cold, warm):  # then the same page again with assets cached
                    page.goto(url, wait_until="load")
                    page.wait_for_function(
                        "() => performance.getEntriesByName('first-contentful-paint').length > 0", timeout=10_000
                    )
                    bucket.append(page.evaluate(PAINT_JS))
                context.close()
        finally:
            browser.close()

    def med(samples: list[dict], key: str) -> float | None:
        values = [s[key] for s in samples if s[key] is not None]
        return round(statistics.median(values), 1) if values else None

    return {
        "runs": runs,
        "cold_fcp_median_ms": med(cold, "fcp"),
        "cold_dom_content_loaded_median_ms": med(cold, "dcl"),
        "cold_load_median_ms": med(cold, "load"),
        "warm_fcp_median_ms": med(warm, "fcp"),
        "cold_fcp_samples_ms": [round(s["fcp"], 1) for s in cold if s["fcp"] is not None],
    }
