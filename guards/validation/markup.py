"""Markup read as the text it shows: HTML tags gone (a link's ``href`` kept), entities
decoded, a Markdown link its title and its link; and a link as an identity
(:func:`guards.validation.features.features`).
"""

from __future__ import annotations

import html
import re

__all__ = ["IMAGE", "as_shown", "link_identity"]

# Bounded, and possessive where parts could match the same characters: an item of
# "<a href=href=href=..." must not make the engine try every split (it held the GIL 11 s).
_HREF = r"""<a\b[^<>]{0,500}?\bhref\s*=\s*["']?([^"'\s<>]{1,2000}+)[^<>]{0,500}+>"""
_ANCHOR = re.compile(_HREF + r"(.{0,2000}?)</a\s*>", re.IGNORECASE | re.DOTALL)
_OPEN_ANCHOR = re.compile(_HREF, re.IGNORECASE)
# a tag, its attributes as long as a data: image's or a long meta's (linear: a run of
# attributes never passes the next "<", where the next tag's would start)
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*+(?:\s[^<>]{0,20000}+)?/?>")
_MARKDOWN_LINK = re.compile(
    r"!?\[([^\[\]]{0,500}+)\]\(([^\s()]{1,2000}+)(?:\s+\"[^\"]{0,500}+\")?\)"
)
_SCHEME = re.compile(r"^(?:https?://)?(?:www\.)?")
#: an HTML image with a source: a text showing one shows something, whatever its words
IMAGE = re.compile(r"<img\b[^<>]{0,500}?\bsrc\s*=\s*[\"']?[^\"'\s<>]", re.IGNORECASE)


#: a declaration (``<!DOCTYPE html>``, ``<![CDATA[``'s opening), which shows nothing (not
#: Slack's ``<!channel>``, which an item written for Slack shows)
_DECLARATION = re.compile(r"<!(?:doctype\b|\[cdata\[)[^<>]{0,500}>", re.IGNORECASE)
#: what a page never shows, from its opening to its closing: (opening, closing)
_HIDDEN = (("<!--", "-->"), ("<style", "</style"), ("<script", "</script"))


def as_shown(text: str) -> str:
    """``text`` as a reader sees it: HTML tags and Markdown link syntax gone (links kept),
    and what a page never shows (style sheets, scripts, comments, declarations) too.

    >>> as_shown("<!DOCTYPE html><style>p{color:red}</style><p>Hi <!-- x --></p>")
    'Hi'
    """
    if "<" in text:
        text = _DECLARATION.sub(" ", _hidden_gone(text))
        text = _TAG.sub(" ", _OPEN_ANCHOR.sub(r" \1 ", _ANCHOR.sub(_anchor, text)))
    if "](" in text:
        text = _MARKDOWN_LINK.sub(r"\1 \2", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def _hidden_gone(text: str) -> str:
    """``text`` without its comments, style sheets and scripts. One that never closes is
    left to the tag reading (a plain text that mentions ``<script>`` keeps what follows
    it: review22 M2); ``<!-->`` and ``<!--->`` are empty comments, closed at once. Linear:
    each opening is looked for once from where the text was left, and only again once the
    text read passes where it was found."""
    lower = text.lower()
    if "<!--" not in lower and "<style" not in lower and "<script" not in lower:
        return text
    found = [lower.find(opening) for opening, _ in _HIDDEN]
    kept: list[str] = []
    at = 0
    while True:
        starts = [(f, k) for k, f in enumerate(found) if f != -1]
        if not starts:
            break
        start, k = min(starts)
        opening, closing = _HIDDEN[k]
        after = start + len(opening)
        if k and lower[after : after + 1] not in (">", " ", "/", "\t", "\n", "\r", "\f"):
            found[k] = lower.find(opening, after)  # <styles>, <scripted>: another tag
            continue
        if not k and lower.startswith((">", "->"), after):  # <!--> and <!--->
            end = after + (1 if lower[after] == ">" else 2)
        else:
            end = lower.find(closing, after)
            if end == -1:  # never closed: nor is any later one of its kind
                found[k] = -1
                continue
            end += len(closing)
            if k:  # </style ...>: to its ">"
                close = lower.find(">", end)
                end = len(text) if close == -1 else close + 1
        kept += (text[at:start], " ")
        at = end
        found = [
            f if f == -1 or f >= at else lower.find(o, at)
            for f, (o, _) in zip(found, _HIDDEN, strict=True)
        ]
    kept.append(text[at:])
    return "".join(kept)


def _anchor(match: re.Match[str]) -> str:
    """A link as shown: its text and its target (once, when the text is the target)."""
    href, shown = match.group(1), match.group(2).strip()
    if not shown or link_identity(shown.casefold()) == link_identity(href.casefold()):
        return f" {href} "
    return f" {shown} {href} "


def link_identity(url: str) -> str:
    """A link as an identity: no scheme, ``www.`` or trailing ``/``, and no fragment
    that only points into the page (one that routes, ``#/job/5``, ``#!/s/9``, or names a
    numbered post, ``#post-12``, names another item and stays).

    >>> link_identity("https://www.news.example/a/b/?id=7#comments")
    'news.example/a/b?id=7'
    >>> link_identity("https://jobs.example/#/job/17")
    'jobs.example#/job/17'
    >>> link_identity("https://x.example/live#post-3")
    'x.example/live#post-3'
    """
    rest, _, fragment = _SCHEME.sub("", url, count=1).partition("#")
    base, _, query = rest.partition("?")
    names = fragment[:1] in ("/", "!") or any(c.isdigit() for c in fragment)
    return base.rstrip("/") + (f"?{query}" if query else "") + (f"#{fragment}" if names else "")
