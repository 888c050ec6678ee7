"""Per-element verdicts from tag, class, id and role: boilerplate or not, content weight, invisible.

The walk asks once per recorded element (``_verdict``); the verdict on a class/id pair is cached,
since a page repeats the same few names many times. Boilerplate-flagged subtrees (nav, aside,
footer, class/id like ``sidebar``, ``comment``, ``share``, role=navigation, …) hold about half of
a typical page; the strict selection ignores them, the relaxed retries do not (see
``main_content.py``). A content word in a name ("article-sidebar-layout") vetoes the verdict, except
in the name of a part of the article: "entry-meta", "post-tags", "article__datestamp",
"article-comments", "story-related" (content word first, boilerplate word last).
"""

from __future__ import annotations

import re
from functools import lru_cache

from pipeline.extract.tags import _ARTICLE_TAGS, _BOILER_TAGS, _NEVER_BOILER

#: Distinctive boilerplate words, matched as substrings of class/id ("comments-area", "mainNav").
_BOILER_SUBSTR = re.compile(
    r"sidebar|comment|breadcrumb|footer|navbar|navigation|advert|sponsor|cookie|social|sharedaddy"
    r"|related|newsletter|popup|disqus|masthead|pagination|subscribe|signup|skyscraper"
    r"|banner|outbrain|taboola|promo|recommend|consent|gdpr|toolbar|byline|author-info|community"
    r"|replies|shoutbox|supplemental|agegate|legends"
    # the same in German, French, Spanish, Polish (comments, ads, footer, cookies)
    r"|kommentar|komentarz|comentario|werbung|anzeige|publicite|publicidad|reklama|fusszeile|stopka"
)
#: Short boilerplate words, matched as whole class/id tokens only ("nav", not "canvas").
_BOILER_TOKENS = frozenset(
    """nav menu ad ads adsbygoogle tags tag tools header topbar skip login modal rss print meta
    extra legal copyright jump share sharing pager remark""".split()
)
#: Words that mark a real content container; they veto the boilerplate verdict.
_CONTENT_WORDS = re.compile(
    r"article|content|main|body|entry|story|post-text|prose|blog-post|h-entry"
    r"|artikel|inhalt|contenu|contenido|contenuto|beitrag"  # German, French, Spanish, Italian
)
_POSITIVE = re.compile(
    r"article|content|entry|main|page|post|text|blog|story|body|prose|artikel|inhalt|contenu|contenido"
    r"|contenuto|beitrag"
)
_NEGATIVE = re.compile(
    r"comment|sidebar|share|social|sponsor|promo|related|footer|masthead|widget|banner|advert|meta"
    r"|shopping|tags|tool|nav|menu|outbrain|taboola|popup|subscribe|newsletter|breadcrumb|byline|foot"
    r"|kommentar|komentarz|comentario|werbung|anzeige|publicite|publicidad|reklama|fusszeile|stopka"
)
_TOKEN_SPLIT = re.compile(r"[^a-z0-9]+")
#: A part of the article named as such: "entry-meta", "post-tags", "article__datestamp",
#: "story-related-links", "article-comments". The content word at its head does not veto it.
_ARTICLE_PART = re.compile(
    r"(?:^|\s)(?:article|entry|post|story|content|single|blog|news)[-_]+(?:[a-z0-9]+[-_]+)*?"
    r"(?:meta|tags?|share|sharing|social|byline|author|authors|bio|date|dates|dateline|datestamp|time"
    r"|timestamp|related|comments?|footer|header-meta|navigation|nav|pagination|credits?|newsletter"
    r"|subscribe|sidebar|teasers?|recommended|more|promo|toolbar|actions|info)(?=\s|$)"
)
_BOILER_ROLES = frozenset(
    "navigation menu menubar complementary banner contentinfo dialog alertdialog alert search".split()
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")


# Per-token flags: class and id strings are mostly new on each site (ids carry numbers), but their
# words repeat, so each word's regular expressions run once. Every alternative of _POSITIVE,
# _NEGATIVE, _BOILER_SUBSTR and _CONTENT_WORDS is letters only, so it matches inside one token,
# except the few with a hyphen, which are looked for in the whole string.
_POS, _NEG, _CONTENT, _BOILER, _HEAD = 1, 2, 4, 8, 16
_HEAD_WORDS = frozenset("article entry post story content single blog news".split())
_SPANNING_CONTENT = ("post-text", "blog-post")
_SPANNING_BOILER = ("author-info",)
_token_flags: dict[str, int] = {}


def _flags_of(token: str) -> int:
    flags = _token_flags.get(token)
    if flags is None:
        flags = (
            (_POS if _POSITIVE.search(token) else 0)
            | (_NEG if _NEGATIVE.search(token) else 0)
            | (_CONTENT if _CONTENT_WORDS.search(token) else 0)
            | (_BOILER if token in _BOILER_TOKENS or _BOILER_SUBSTR.search(token) else 0)
            | (_HEAD if token in _HEAD_WORDS else 0)
        )
        if len(_token_flags) < 1 << 17:
            _token_flags[token] = flags
    return flags


@lru_cache(maxsize=1 << 16)
def _class_verdict(cls: str, ident: str) -> tuple[bool, int, str]:
    """(looks like boilerplate, readability-style weight, lowercased names) for class and id.

    Weight: +25 for content-ish words, -25 for boilerplate-ish words (both can apply).
    Boilerplate: a distinctive word anywhere, or a short word as a whole token — unless a content
    word (article, content, main, entry, …) is present too, so "article-sidebar-layout" survives,
    or the name is that of a part of the article ("entry-meta"). An id that reads like a
    slugified heading ("sharing-with-a-single-developer") is not evidence either way.
    """
    names = f"{cls} {ident}".lower()
    if ident and ident.count("-") + ident.count("_") >= 3:
        names_for_verdict = cls.lower()
    else:
        names_for_verdict = names
    flags = 0
    for token in _TOKEN_SPLIT.split(names_for_verdict):
        if token:
            flags |= _flags_of(token)
    weight = (25 if flags & _POS else 0) - (25 if flags & _NEG else 0)
    if flags & _HEAD and _ARTICLE_PART.search(names_for_verdict):
        return True, weight, names
    if flags & _CONTENT or any(w in names_for_verdict for w in _SPANNING_CONTENT):
        return False, weight, names
    boiler = bool(flags & _BOILER) or any(w in names_for_verdict for w in _SPANNING_BOILER)
    return boiler, weight, names


def _verdict(tag: str, attrs: dict) -> tuple[bool, int, bool, str]:
    """(boilerplate, weight, explicit article container, names) of one element.

    An explicit article container is ``<article>``, ``<main>``, ``role=main|article`` or
    ``itemprop=articleBody``; nav/aside/footer are boilerplate whatever their names say, and
    article containers and media (``_NEVER_BOILER``) never are.
    """
    cls = attrs.get("class")
    ident = attrs.get("id")
    if cls or ident:
        bad, weight, names = _class_verdict(cls or "", ident or "")
    else:
        bad, weight, names = False, 0, ""
    hint = tag in _ARTICLE_TAGS
    role = attrs.get("role")
    if role:
        if role in _BOILER_ROLES:
            bad = True
        elif role == "main" or role == "article":
            hint = True
    if not hint and attrs.get("itemprop") == "articleBody":
        hint = True
    if tag in _BOILER_TAGS:
        bad = True
    elif hint or tag in _NEVER_BOILER:
        bad = False
    return bad, weight, hint, names


def _is_hidden(attrs: dict) -> bool:
    """Invisible: ``hidden``, ``aria-hidden="true"`` (bar readability's fallback images), or an
    inline style with ``display: none`` / ``visibility: hidden``."""
    if "hidden" in attrs:
        return True
    if attrs.get("aria-hidden") == "true" and "fallback-image" not in (attrs.get("class") or ""):
        return True
    style = attrs.get("style")
    return bool(style) and _HIDDEN_STYLE.search(style.lower()) is not None
