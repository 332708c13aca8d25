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
    r"opacity\s*:\s*0(?![.\d]*[1-9])|max-height\s*:\s*0|"
    r"width\s*:\s*0(px)?\s*;.*height\s*:\s*0",
    re.IGNORECASE,
)


# Text in the colour of its background is hidden: white on the default white page, or any colour on
# the same colour ("color:#1a5d3a" inside "background:#1a5d3a"). White text on a dark button is not.
_COLOR = re.compile(r"(?<![-\w])color\s*:\s*([^;\"']+)", re.IGNORECASE)
_BACKGROUND = re.compile(r"background(?:-color)?\s*:\s*([^;\"']+)", re.IGNORECASE)
_HEX = re.compile(r"#([0-9a-f]{3}|[0-9a-f]{6})\b", re.IGNORECASE)
_RGB = re.compile(r"rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})", re.IGNORECASE)
_NAMED = {"white": "#ffffff", "black": "#000000", "red": "#ff0000", "green": "#008000", "blue": "#0000ff"}
WHITE = "#ffffff"


def css_color(value: str) -> str | None:
    """``value`` (a CSS colour or a background shorthand) as ``#rrggbb``, or None if not understood."""
    value = value.strip().lower()
    if match := _HEX.search(value):
        digits = match.group(1)
        return "#" + (digits if len(digits) == 6 else "".join(c * 2 for c in digits))
    if match := _RGB.search(value):
        return "#" + "".join(f"{min(255, int(c)):02x}" for c in match.groups())
    first = value.split()[0] if value.split() else ""
    return _NAMED.get(first)


def _colors(style: str, attrs: dict[str, str]) -> tuple[str | None, str | None]:
    """(text colour, background colour) that this element sets, if any."""
    color = css_color(m.group(1)) if (m := _COLOR.search(style)) else None
    color = color or (css_color(attrs["color"]) if attrs.get("color") else None)  # <font color>
    background = css_color(m.group(1)) if (m := _BACKGROUND.search(style)) else None
    background = background or (css_color(attrs["bgcolor"]) if attrs.get("bgcolor") else None)
    return color, background


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
        # (tag, this element or an ancestor hides its content, the background in effect): the top
        # answers "hidden?" and "on what background?" in O(1).
        self._stack: list[tuple[str, bool, str]] = []
        # tag -> its positions in the stack, so closing a tag never scans a deep stack.
        self._open: dict[str, list[int]] = {}

    def _hidden(self) -> bool:
        return bool(self._stack) and self._stack[-1][1]

    def _background(self) -> str:
        return self._stack[-1][2] if self._stack else WHITE

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
        style = a.get("style", "")
        hides = tag in _SKIP or "hidden" in a or bool(_HIDDEN_STYLE.search(style))
        hides = hides or (a.get("aria-hidden") == "true" and "display" in style)
        color, background = _colors(style, a)
        background = background or self._background()
        hides = hides or (color is not None and color == background)
        self._open.setdefault(tag, []).append(len(self._stack))
        self._stack.append((tag, hides or self._hidden(), background))

    def handle_endtag(self, tag: str) -> None:
        positions = self._open.get(tag)
        if positions:
            cut = positions[-1]
            for open_tag, _, _ in self._stack[cut:]:
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
