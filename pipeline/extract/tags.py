"""What the extractor knows about each HTML tag: how the walk treats it, and how selection weighs it.

The walk (``walk.py``) sorts every tag into one of its kinds: never content (not entered), a leaf
(recorded, not entered), a block (starts and ends a text block), a table cell, transparent inline
markup (no record of its own) or a plain element. Selection (``main_content.py``) gives containers
a prior by tag and knows which tags hold paragraphs; the cleaner (``cleaning.py``) looks at a few
container tags only.
"""

from __future__ import annotations

#: Never content: not entered, not recorded.
_SKIP_TAGS = frozenset(
    """script style template svg head title meta link base canvas map area frameset frame noembed
    dialog datalist option optgroup param source track annotation annotation-xml""".split()
)
#: Recorded as leaf elements (counted by the conditional cleaner) but never entered.
_INPUT_TAGS = frozenset("input select textarea button".split())
_EMBED_TAGS = frozenset("iframe video audio object embed".split())
#: Tags that start and end a text block.
_BLOCK_TAGS = frozenset(
    """p div section article main header footer aside nav h1 h2 h3 h4 h5 h6 ul ol li dl dt dd table
    thead tbody tfoot tr caption blockquote pre figure figcaption form fieldset legend address hr
    details summary center body html noscript menu hgroup""".split()
)
#: Table cells: separated by a space inside their row's block.
_CELL_TAGS = frozenset(("td", "th"))
#: Inline tags that get no element record: their text belongs to the enclosing element.
_TRANSPARENT = frozenset(
    """a span b strong i em u s small big font abbr cite code sup sub mark q time kbd var tt del ins
    label bdi bdo nobr dfn samp strike acronym wbr""".split()
)
#: Recorded, never entered.
_LEAF_TAGS = frozenset(("img", "br", "noscript", "hr")) | _INPUT_TAGS | _EMBED_TAGS
#: Form controls and embeds are recorded under one name each (the cleaner only counts them).
_ALIAS = {t: "input" for t in _INPUT_TAGS} | {t: "embed" for t in _EMBED_TAGS}

#: Boilerplate by tag alone (soft: relaxed if the strict pass finds too little).
_BOILER_TAGS = frozenset(("nav", "aside", "footer"))
#: Never boilerplate by class/id: media and explicit article containers.
_NEVER_BOILER = frozenset(("article", "main", "figure", "picture", "img"))
#: Explicit article containers.
_ARTICLE_TAGS = frozenset(("article", "main"))

#: Whose own inline text counts as a paragraph for scoring.
_PARA_TAGS = frozenset("p pre td h2 h3 h4 h5 h6".split())
_HEADINGS = frozenset("h1 h2 h3 h4 h5 h6".split())
_TEXT_CONTAINERS = frozenset(("div", "section", "article", "main", "center", "body"))
#: Containers the conditional cleaner looks at.
_CLEAN_TAGS = frozenset("div section table ul form fieldset".split())
#: A container's starting score by tag (readability's).
_TAG_PRIOR = {
    "div": 5,
    "article": 5,
    "main": 5,
    "section": 2,
    "pre": 3,
    "td": 3,
    "blockquote": 3,
    "address": -3,
    "ol": -3,
    "ul": -3,
    "dl": -3,
    "dd": -3,
    "dt": -3,
    "li": -3,
    "form": -3,
    "h1": -5,
    "h2": -5,
    "h3": -5,
    "h4": -5,
    "h5": -5,
    "h6": -5,
    "th": -5,
}
