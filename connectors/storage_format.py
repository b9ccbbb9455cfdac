"""Confluence storage format (XHTML plus ``ac:``/``ri:`` macros) -> readable plain text.

Pure and dependency-free (stdlib `html.parser`), so it runs on untrusted page bodies without
surprises: malformed markup never raises, input and output are bounded, entities are decoded.
What a reader of a runbook needs survives: paragraphs and headings as lines, numbered lists as
``1. step``, bullets as ``- item``, inline code in backticks, code/noformat macros as fenced
blocks, panel macros (info, note, warning, tip, panel, expand) with their body, task lists as
``- [ ]``/``- [x]``, table rows as ``a | b``, links and user mentions as their visible text.
Dynamic or decorative macros (toc, children, jira, anchor, ...) and images contribute nothing.

The new (ADF) editor's markup too: ``ac:adf-extension`` nodes are rendered from their ADF part
(panels by ``panel-type``, decision lists as ``- Decision: …``) and their ``ac:adf-fallback``
copy is skipped, so nothing is read twice; ADF attributes (local ids and the like) are metadata,
never text; a status lozenge shows its label (``[IN PROGRESS]``) and an expand its title.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from bot.core.redaction import clip

MAX_INPUT_CHARS = 1_000_000
DEFAULT_MAX_CHARS = 20_000

_HEADINGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6"}  # separated by a blank line
_BLOCKS = {
    "div", "section", "article", "header", "footer", "blockquote", "table", "thead", "tbody",
    "tfoot", "dl", "dt", "dd", "hr", "ac:layout", "ac:layout-section", "ac:layout-cell",
    "ac:rich-text-body", "ac:task-list", "ac:task-body",
}
# Elements whose whole content is metadata, not prose.
_DROPPED = {"script", "style", "ac:parameter", "ac:placeholder", "ac:image", "ac:task-id", "ac:task-uuid",
            "ac:emoticon", "ac:adf-attribute"}
# Macro parameters whose text a reader sees on the page: a status lozenge's label, an expand's title.
_SHOWN_PARAMETERS = {("status", "title"), ("expand", "title")}
# New-editor (ADF) attributes read to render a node; every other one (local ids...) is metadata.
_ADF_ATTRIBUTES = {"panel-type", "state"}
_ADF_PANELS = {"info": "Info: ", "note": "Note: ", "warning": "Warning: ", "success": "Success: ",
               "error": "Error: ", "tip": "Tip: ", "custom": ""}
_CODE_MACROS = {"code", "noformat"}
_PANEL_LABELS = {"info": "Info: ", "note": "Note: ", "warning": "Warning: ", "tip": "Tip: "}
_TEXT_MACROS = {"panel", "expand", "section", "column", "details", "excerpt", "status", ""}
_LINK_TARGETS = ("ri:content-title", "ri:filename", "ri:space-key", "ri:value")
_WS = re.compile(r"[ \t\r\n\f\v\u00a0]+")


class _Converter(HTMLParser):
    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.max_chars = max_chars
        self.out: list[str] = []
        self.size = 0
        self.lists: list[int] = []  # per open list: next number (ol) or -1 (ul)
        self.prefix = ""  # list marker waiting for the item's first text
        self.drop: tuple[str, int] | None = None  # (tag that started the drop, nesting of that tag)
        self.macros: list[str] = []
        self.code: list[str] | None = None
        self.in_code_body = False
        self.pre = 0
        self.tables = 0
        self.cells = 0
        self.link: tuple[bool, str] | None = None  # (visible text seen, fallback target title)
        self.task_status: str | None = None
        self.parameter: tuple[str, str] | None = None  # (macro, parameter) whose text is shown
        self.adf_attribute: str | None = None  # the ADF attribute being read, and its text
        self.adf_value = ""
        self.adf_nodes: list[str] = []  # open ac:adf-node types
        self.adf_extensions: list[int] = []  # output size when each open ac:adf-extension began
        self.adf_fallback_drop = False

    # -- output ---------------------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        if text and self.size < self.max_chars:
            self.out.append(text)
            self.size += len(text)

    def _line_start(self) -> bool:
        return not self.out or self.out[-1].endswith("\n")

    def _newline(self) -> None:
        if not self._line_start():
            self._emit("\n")

    def _break(self, tag: str) -> None:
        """A block boundary: a blank line between paragraphs, a plain newline inside lists."""
        if self.tables:
            return
        self._newline()
        if tag in _HEADINGS and not self.lists and self.out and not "".join(self.out[-2:]).endswith("\n\n"):
            self._emit("\n")

    def _text(self, text: str) -> None:
        if self._line_start():
            text = text.lstrip()
            if not text:
                return
            self._emit("   " * max(len(self.lists) - 1, 0) + self.prefix)
            self.prefix = ""
        elif text.startswith(" ") and self.out[-1].endswith(" "):
            text = text.lstrip()
        self._emit(text)

    # -- tags -----------------------------------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.drop is not None:
            if tag == self.drop[0]:
                self.drop = (tag, self.drop[1] + 1)
            return
        attr = {k: v or "" for k, v in attrs}
        if tag == "ac:parameter" and self.macros and (self.macros[-1], attr.get("ac:name", "")) in _SHOWN_PARAMETERS:
            self.parameter = (self.macros[-1], attr.get("ac:name", ""))
        elif tag == "ac:adf-attribute" and attr.get("key") in _ADF_ATTRIBUTES:
            self.adf_attribute, self.adf_value = attr["key"], ""
        elif tag == "ac:adf-fallback" and self.adf_extensions and self.size > self.adf_extensions[-1]:
            # The new editor stores a node twice: as ADF, then as a storage fallback for old
            # readers. The ADF was rendered already: the fallback would double the text.
            self.drop = (tag, 1)
        elif tag == "ac:adf-extension":
            self.adf_extensions.append(self.size)
        elif tag == "ac:adf-node":
            self._start_adf_node(attr.get("type", ""))
        elif tag in _DROPPED:
            self.drop = (tag, 1)
        elif tag == "ac:structured-macro":
            self._start_macro(attr.get("ac:name", "").lower())
        elif tag == "ac:plain-text-body":
            self.in_code_body = True
        elif tag in ("ol", "ul"):
            self._newline()
            start = attr.get("start", "1")
            self.lists.append((int(start) if start.isdigit() else 1) if tag == "ol" else -1)
        elif tag in ("li", "ac:task"):
            self._start_item()
        elif tag == "ac:task-status":
            self.task_status = ""
        elif tag == "br":
            self._emit("\n")
        elif tag == "pre":
            self._break("p")
            self.pre += 1
        elif tag == "code" and self.code is None and not self.pre:
            self._text("`")
        elif tag == "table":
            self._newline()
            self.tables += 1
        elif tag == "tr":
            self._newline()
            self.cells = 0
        elif tag in ("td", "th"):
            if self.cells:
                self._emit(" | ")
            elif not self._line_start():  # a stray cell outside a row must not glue words together
                self._emit(" ")
            self.cells += 1
        elif tag in ("a", "ac:link"):
            self.link = (False, "")
        elif tag.startswith("ri:") and tag != "ri:user" and self.link is not None:
            target = next((attr[k] for k in _LINK_TARGETS if attr.get(k)), "")
            self.link = (self.link[0], self.link[1] or target)
        elif tag == "ri:user":
            who = attr.get("ri:username") or attr.get("ri:userkey") or attr.get("ri:account-id") or "user"
            self._text(("" if self._line_start() or self.out[-1].endswith(" ") else " ") + "@" + who)
        elif tag == "time" and attr.get("datetime"):
            self._text(attr["datetime"])
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.drop is not None:
            if tag == self.drop[0]:
                depth = self.drop[1] - 1
                self.drop = (tag, depth) if depth else None
            return
        if tag == "ac:parameter" and self.parameter is not None:
            self.parameter = None
        elif tag == "ac:adf-attribute" and self.adf_attribute is not None:
            self._adf_attribute(self.adf_attribute, self.adf_value.strip())
            self.adf_attribute = None
        elif tag == "ac:adf-extension":
            if self.adf_extensions:
                self.adf_extensions.pop()
            self._newline()
        elif tag == "ac:adf-node":
            self._end_adf_node()
        elif tag == "ac:structured-macro":
            self._end_macro()
        elif tag == "ac:plain-text-body":
            self.in_code_body = False
        elif tag in ("ol", "ul"):
            if self.lists:
                self.lists.pop()
            self.prefix = ""
            self._newline()
        elif tag in ("li", "ac:task"):
            self.prefix = ""
            self._newline()
        elif tag == "ac:task-status" and self.task_status is not None:
            self.prefix = "- [x] " if self.task_status.strip().lower() == "complete" else "- [ ] "
            self.task_status = None
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
            self._break("p")
        elif tag == "code" and self.code is None and not self.pre:
            self._emit("`")
        elif tag == "table":
            self.tables = max(self.tables - 1, 0)
            self._newline()
        elif tag in ("a", "ac:link"):
            if self.link is not None and not self.link[0] and self.link[1]:
                self._text(self.link[1])
            self.link = None
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if self.adf_attribute is not None:
            self.adf_value += data
            return
        if self.parameter is not None:
            self._parameter_text(data)
            return
        if self.drop is not None:
            return
        if self.code is not None:
            if self.in_code_body:
                self.code.append(data)
            return
        if self.task_status is not None:
            self.task_status += data
            return
        if self.pre:
            self._text(data) if self._line_start() else self._emit(data)
            return
        text = _WS.sub(" ", data)
        if text.strip() and self.link is not None:
            self.link = (True, self.link[1])
        if text.strip() or not self._line_start():
            self._text(text)

    def unknown_decl(self, data: str) -> None:
        if data.startswith("CDATA["):
            self._cdata(data[len("CDATA["):])

    def handle_comment(self, data: str) -> None:
        # Newer parsers report CDATA outside foreign content as a bogus comment.
        if data.startswith("[CDATA[") and data.endswith("]]"):
            self._cdata(data[len("[CDATA["):-2])

    def _cdata(self, data: str) -> None:
        if self.drop is None and self.code is not None:
            self.code.append(data)
        else:
            self.handle_data(data)

    # -- structure ------------------------------------------------------------------------------
    def _start_item(self) -> None:
        self._newline()
        if self.lists and self.lists[-1] >= 0:
            self.prefix = f"{self.lists[-1]}. "
            self.lists[-1] += 1
        else:
            self.prefix = "- "

    def _parameter_text(self, data: str) -> None:
        text = _WS.sub(" ", data).strip()
        if not text or self.parameter is None:
            return
        macro = self.parameter[0]
        if macro == "status":  # a lozenge: [IN PROGRESS], inline with the sentence around it
            self._text(("" if self._line_start() or self.out[-1].endswith(" ") else " ") + f"[{text.upper()}]")
        else:  # an expand's title heads its body
            self._newline()
            self._text(text.rstrip(":") + ":")
            self._newline()

    def _start_adf_node(self, kind: str) -> None:
        self.adf_nodes.append(kind)
        if kind in ("panel", "decision-list"):
            self._newline()
            if kind == "decision-list":
                self.lists.append(-1)
        elif kind == "decision-item":
            self._start_item()
            self.prefix = "- Decision: "

    def _end_adf_node(self) -> None:
        kind = self.adf_nodes.pop() if self.adf_nodes else ""
        if kind == "decision-list" and self.lists:
            self.lists.pop()
        if kind in ("panel", "decision-list", "decision-item"):
            self.prefix = ""
            self._newline()

    def _adf_attribute(self, key: str, value: str) -> None:
        node = self.adf_nodes[-1] if self.adf_nodes else ""
        if node == "panel" and key == "panel-type":
            self.prefix = _ADF_PANELS.get(value.lower(), "")
        elif node == "decision-item" and key == "state" and value.upper() != "DECIDED":
            self.prefix = "- Decision (undecided): "

    def _start_macro(self, name: str) -> None:
        if name in _CODE_MACROS:
            self.code = []
        elif name in _PANEL_LABELS:
            self._newline()
            self.prefix = _PANEL_LABELS[name]
        elif name not in _TEXT_MACROS:
            self.drop = ("ac:structured-macro", 1)
            return
        self.macros.append(name)

    def _end_macro(self) -> None:
        name = self.macros.pop() if self.macros else ""
        if name in _CODE_MACROS and self.code is not None:
            body = _code_text(self.code)
            self.code = None
            self._break("p")
            self._emit("```\n" + body + "\n```\n\n")
        elif name != "status":  # a lozenge sits inside its sentence
            self._newline()


def storage_to_text(storage: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Readable plain text of a storage-format body, at most `max_chars` characters."""
    source = storage[:MAX_INPUT_CHARS]
    converter = _Converter(max_chars)
    try:
        converter.feed(source)
        converter.close()
    except Exception:  # the stdlib parser can still trip on pathological input: degrade, never raise
        return _tidy(_WS.sub(" ", html.unescape(re.sub(r"<[^>]*>", " ", source))), max_chars)
    if converter.code:  # an unterminated code macro: keep what it held
        converter._emit("\n" + _code_text(converter.code))
    return _tidy("".join(converter.out), max_chars)


def _code_text(chunks: list[str]) -> str:
    # An unterminated CDATA section reaches us as plain data, markers included.
    return "".join(chunks).removeprefix("<![CDATA[").removesuffix("]]>").strip("\n")


def _tidy(text: str, max_chars: int) -> str:
    out = "\n".join(line.rstrip() for line in text.split("\n"))
    out = re.sub(r"\n{3,}", "\n\n", out).strip()
    if len(out) > max_chars:
        out = clip(out, max_chars, one_line=False)  # masked before it is cut
    return out
