"""HTML mail to plain text with the standard library's ``html.parser``, never rendered.

Rule (issue 4, "Parsing": HTML-only mail converted to text): scripts, styles,
titles and comments are dropped; block elements end a line; table cells are
separated by a tab (so that a contact form laid out as a table reads
``Nom<TAB>Dupont``); ``<blockquote>`` content is prefixed with ``> `` like a
quoted plain-text reply, so quoted history is removed the same way.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from services.intake_mail.domain.charsets import clean_text

__all__ = ["html_to_text"]

_SKIPPED = frozenset({"script", "style", "title", "template", "noscript", "svg", "xml", "object"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "center", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
        "tbody", "thead", "tfoot", "tr", "ul", "caption", "body", "html",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})
_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")
_CELL_GAP = re.compile(r" *\t[ \t]*")
_TAGS = re.compile(r"<[^>]*>")
_SCRIPTS = re.compile(r"(?is)<(script|style|title)\b.*?</\1\s*>")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._skipping: list[str] = []
        self._quote = 0
        self._pre = 0
        self._cell = 0

    def _end_line(self, *, force: bool = False) -> None:
        text = _CELL_GAP.sub("\t", "".join(self._line))
        text = text.rstrip(" ") if self._pre else text.strip(" ")
        if text.strip("\t "):
            self.lines.append("> " * self._quote + text)
        elif force:
            self.lines.append(">" if self._quote else "")
        self._line = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping.append(tag)
        elif self._skipping:
            return
        elif tag == "br":
            self._end_line(force=True)
        elif tag == "blockquote":
            self._end_line()
            self._quote += 1
        elif tag in _CELLS:
            if self._cell:
                self._line.append("\t")
            self._cell += 1
        elif tag in _BLOCKS:
            self._end_line()
            self._cell = 0
            if tag == "li":
                self._line.append("- ")
            elif tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            if tag in self._skipping:
                while self._skipping and self._skipping.pop() != tag:
                    pass
        elif self._skipping:
            return
        elif tag == "blockquote":
            self._end_line()
            self._quote = max(0, self._quote - 1)
        elif tag in _BLOCKS:
            self._end_line()
            self._cell = 0
            if tag == "pre":
                self._pre = max(0, self._pre - 1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            return
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "blockquote") and tag not in _CELLS:
            self.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._pre:
            first, *rest = data.split("\n")
            self._line.append(first)
            for line in rest:
                self._end_line(force=True)
                self._line.append(line)
        else:
            self._line.append(_WHITESPACE.sub(" ", data))

    def text(self) -> str:
        self._end_line()
        return "\n".join(self.lines)


def html_to_text(source: str) -> str:
    """Return the readable text of an HTML document, without rendering or fetching anything.

    Rule (issue 4, "Parsing": HTML-only mail); see the module docstring. If
    ``html.parser`` gives up on a malformed document, tags are stripped instead.
    """
    extractor = _Extractor()
    try:
        extractor.feed(source)
        extractor.close()
        text = extractor.text()
    except (AssertionError, ValueError, IndexError, RecursionError):
        text = html.unescape(_TAGS.sub(" ", _SCRIPTS.sub(" ", source)))
    return clean_text(text)
