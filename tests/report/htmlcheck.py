"""Checks that an HTML page is self-contained: parsed with the standard library's html.parser."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
URL_ATTRIBUTES = {"src", "href", "srcset", "poster", "data", "action", "background"}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if tag == "img" and name == "src":
                self.images.append(value or "")
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value or ""))


def inspect(html: str) -> _Collector:
    """Parse ``html`` and collect its images, URL attributes and tags."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def problems(html: str) -> list[str]:
    """Everything that would make the page fetch something or show a broken image."""
    found = []
    page = inspect(html)
    for src in page.images:
        if not src.startswith("data:image/png;base64,"):
            found.append(f"image not a PNG data URI: {src[:60]}")
            continue
        payload = base64.b64decode(src.split(",", 1)[1], validate=True)
        if not payload.startswith(PNG_MAGIC):
            found.append("image data is not a PNG")
    for tag, name, value in page.urls:
        if not (value.startswith("data:") or value.startswith("#")):
            found.append(f"<{tag} {name}={value[:60]!r}> refers outside the page")
    for tag in ("script", "link", "iframe", "object", "embed"):
        if tag in page.tags:
            found.append(f"<{tag}> element present")
    if re.search(r"https?://", html, flags=re.IGNORECASE):
        found.append("an http(s) reference in the text")
    if re.search(r"url\(", html, flags=re.IGNORECASE):
        found.append("a CSS url() reference")
    return found
