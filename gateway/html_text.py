"""HTML to plain text that drops what a human reader would not see.

Hidden text (``display:none``, ``visibility:hidden``, zero font size, white-on-white, ``hidden``
attribute), scripts, styles and comments are removed from the text and counted, because they are
the usual carriers of instructions aimed at a model rather than at a person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_BLOCK = {
    "p",
    "div",
    "br",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "blockquote",
    "pre",
    "hr",
}
_SKIP = {"script", "style", "head", "title", "template", "noscript"}
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|"
    r"opacity\s*:\s*0(?![.\d]*[1-9])|(?<![-\w])color\s*:\s*(#fff(fff)?|white)\b|max-height\s*:\s*0|"
    r"width\s*:\s*0(px)?\s*;.*height\s*:\s*0",
    re.IGNORECASE,
)


@dataclass
class HtmlText:
    text: str
    hidden_text: str
    comments: list[str] = field(default_factory=list)
    remote_resources: int = 0


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self.hidden: list[str] = []
        self.comments: list[str] = []
        self.remote = 0
        # (tag, this element or an ancestor hides its content): the top answers "hidden?" in O(1).
        self._stack: list[tuple[str, bool]] = []
        # tag -> its positions in the stack, so closing a tag never scans a deep stack.
        self._open: dict[str, list[int]] = {}

    def _hidden(self) -> bool:
        return bool(self._stack) and self._stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag in ("img", "link", "script", "iframe") and re.match(
            r"https?:", a.get("src", a.get("href", ""))
        ):
            self.remote += 1
        if tag in _BLOCK:
            self.visible.append("\n")
        if tag in _VOID:
            return
        hides = tag in _SKIP or "hidden" in a or bool(_HIDDEN_STYLE.search(a.get("style", "")))
        hides = hides or (a.get("aria-hidden") == "true" and "display" in a.get("style", ""))
        self._open.setdefault(tag, []).append(len(self._stack))
        self._stack.append((tag, hides or self._hidden()))

    def handle_endtag(self, tag: str) -> None:
        positions = self._open.get(tag)
        if positions:
            cut = positions[-1]
            for open_tag, _ in self._stack[cut:]:
                self._open[open_tag].pop()  # each entry is popped once: linear overall
            del self._stack[cut:]
        if tag in _BLOCK:
            self.visible.append("\n")

    def handle_data(self, data: str) -> None:
        if self._stack and self._stack[-1][0] in _SKIP:
            return
        (self.hidden if self._hidden() else self.visible).append(data)

    def handle_comment(self, data: str) -> None:
        if data.strip():
            self.comments.append(data.strip())


def _tidy(parts: list[str]) -> str:
    text = "".join(parts).replace("\xa0", " ")
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _complete_markup(html: str) -> str:
    """Escape every "<" that cannot start a complete tag, and close a comment left open at the end.

    html.parser in Python 3.11 retries an unfinished tag, comment or processing instruction from
    each "<" to the end of the input: "<a" * 100_000 takes a minute. After this pass every
    construct it sees is complete, which keeps it linear; the visible text is unchanged.
    """
    out: list[str] = []
    pos = 0
    while (lt := html.find("<", pos)) >= 0:
        out.append(html[pos:lt])
        nxt = html[lt + 1 : lt + 2]
        if html.startswith("<!--", lt):
            close = html.find("-->", lt + 4)
            if close < 0:  # a comment open to the end hides the rest, as in a browser
                out.append(html[lt:] + "-->")
                return "".join(out)
            pos = close + 3
        elif html.startswith("<![", lt):  # CDATA / Outlook "<![if !mso]>": dropped, short or not
            close = html.find(">", lt, lt + 200)
            pos = close + 1 if close >= 0 else lt + 3
            if close < 0:
                out.append("&lt;![")
            continue
        elif nxt.isalpha() or nxt in ("/", "!", "?"):
            close = html.find(">", lt + 1)
            if close < 0:  # no ">" anywhere after: every "<" left is text
                out.append(html[lt:].replace("<", "&lt;"))
                return "".join(out)
            pos = close + 1
        else:
            out.append("&lt;")
            pos = lt + 1
            continue
        out.append(html[lt:pos])
    out.append(html[pos:])
    return "".join(out)


def html_to_text(html: str) -> HtmlText:
    parser = _Extractor()
    parser.feed(_complete_markup(html))
    parser.close()
    return HtmlText(
        text=_tidy(parser.visible),
        hidden_text=_tidy(parser.hidden),
        comments=parser.comments,
        remote_resources=parser.remote,
    )
