"""The filter cases the demo plants, and the filter files it writes for them.

The demo WARC holds pages that the filters step must drop or change, one filter each: a German
article (language id), one teaser paragraph repeated (the Gopher repetition rules), a gambling page
on a subdomain of a blocklisted domain (URL blocklist), adult spam (lexicon), an article ending in
an e-mail address and a public IP (PII redaction) and articles that quote a question of the demo's
benchmark (decontamination). Their text is here; ``jobs/demo/plan.py`` places them in the crawl.
:func:`build_demo_filters` writes the blocklist and the lexicon those pages are caught by,
:func:`build_demo_benchmark` the benchmark, :func:`demo_quality_corpus` the text the demo's quality
classifier is trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

from jobs.demo.pages import Prose, Site, demo_rng

#: The spam sites: a gambling site on the demo blocklist (a subdomain of the listed domain) and an
#: adult spam site whose pages hold words of the demo lexicon.
SPAM_SITES = (
    Site("casino.lucky-jackpot", "Lucky Jackpot Casino", ("slots", "poker"), "nginx/1.24.0"),
    Site("free-videos-hub", "Free Videos Hub", ("videos", "chat"), "nginx/1.24.0"),
)
#: The demo's URL blocklist (UT1 layout: category/domains) and lexicon (LDNOOBW layout: one file per
#: language), written beside the WARC by ``build_demo_filters``.
DEMO_BLOCKLIST = {"gambling": ["lucky-jackpot.example"], "adult": ["adult-only.example"]}
DEMO_LEXICON = {"en": ["xxx", "porn", "nude", "hot singles"]}
#: A public address (example.com's) for the redaction of the contact page.
CONTACT_IP = "93.184.215.14"

GAMBLING_SPAM = (
    "Spin the reels at Lucky Jackpot Casino tonight and claim your welcome bonus of two hundred free "
    "spins, with no deposit needed and instant payouts to your card.",
    "Our poker tables never close, the jackpot grows every minute, and new players get a matched "
    "deposit up to one thousand dollars when they sign up today.",
    "Join thousands of winners who play slots, roulette and blackjack from their phones, and cash out "
    "whenever luck is on their side.",
)
ADULT_SPAM = (
    "Hot singles are waiting to chat with you right now, and every profile comes with free xxx "
    "videos and nude photos that update all day long.",
    "The best porn clips of the week are free for members, so sign up in one minute and watch as "
    "many xxx videos as you like on any device.",
    "Meet hot singles near you tonight: no credit card, no limits, just nude pictures and private "
    "chat rooms that never close.",
)
#: German sentences for the foreign-language page (Loom's own, written for the demo).
GERMAN_SENTENCES = [
    "Der Stadtrat hat am Montag beschlossen, die alte Brücke über den Fluss im nächsten Jahr zu erneuern.",
    "Viele Bewohner der Altstadt freuen sich über den neuen Wochenmarkt, der jeden Samstag stattfindet.",
    "Die Schule am Hafen bekommt endlich eine größere Bibliothek und einen modernen Computerraum.",
    "Nach einem langen Winter öffnen die Cafés am See wieder ihre Terrassen für die Gäste.",
    "Im Museum zeigt eine Ausstellung Gemälde und Fotografien aus dem vergangenen Jahrhundert.",
    "Die Feuerwehr lädt am Wochenende alle Familien zu einem Tag der offenen Tür ein.",
    "Der Bürgermeister erklärte, dass die Stadt mehr Geld für Radwege und Grünflächen ausgeben wird.",
    "Im Herbst beginnen die Bauarbeiten für das neue Schwimmbad am Rand des Parks.",
]


#: The demo's evaluation set: made-up trivia about the demo's made-up towns, written by
#: ``build_demo_benchmark`` as ``benchmark.jsonl`` (fields ``id``, ``question``, ``answer``), the file
#: ``[filters.decontaminate]`` reads. Two items are shorter than an n-gram (13 words): skipped.
DEMO_BENCHMARK: tuple[tuple[str, str], ...] = (
    (
        "Which river flows beneath the old stone bridge that the people of Millbrook rebuilt after the "
        "spring flood of 1911?",
        "The Wend.",
    ),
    (
        "What did the bakers of Eastport first sell at the harbor market when the ferry began running "
        "in winter?",
        "Salted rye loaves.",
    ),
    (
        "Which bird appears on the coat of arms that the Ashford council adopted after the old town "
        "hall burned down?",
        "A grey heron.",
    ),
    (
        "How many lanterns line the canal path in Riverside during the autumn festival that opens "
        "every October?",
        "Three hundred and twelve.",
    ),
    (
        "Who designed the glass roof of the Cedar Falls railway station, which was finished a decade late?",
        "Agnes Thornbury.",
    ),
    (
        "What crop did the orchards around Oakridge grow instead of apples after the long drought of "
        "the nineties?",
        "Walnuts.",
    ),
    (
        "Which instrument does the Kingsbridge town orchestra tune to before every summer concert on "
        "the square?",
        "The church organ.",
    ),
    (
        "What was the name of the lighthouse keeper's cat that guided the fishing boats home to "
        "Fairhaven in the great storm?",
        "Biscuit.",
    ),
    (
        "In which year did the first train cross the viaduct over the valley between Westmoor and Lakeside?",
        "1887.",
    ),
    (
        "What colour are the doors of the houses on the main street of Brookfield, by a rule of the "
        "old parish council?",
        "Dark green.",
    ),
    (
        "Which mountain trail above Stonehaven is closed every spring so that the nesting eagles are "
        "not disturbed?",
        "The Falcon Ridge path.",
    ),
    ("What is the capital of Westmoor?", "Kingsbridge."),
    (
        "How long did the volunteers of Millbrook take to restore the painted ceiling of the old "
        "library reading room?",
        "Seven years.",
    ),
    (
        "Which vegetable gives its name to the harvest fair held on the village green in Ashford every "
        "September?",
        "The marrow.",
    ),
    (
        "What did the Eastport museum find hidden inside the wall of the customs house during the "
        "repairs of 1974?",
        "A bundle of letters from a sea captain.",
    ),
    ("Who founded Lakeside?", "Two sisters."),
    (
        "What does the town crier of Oakridge ring to open the cheese market on the first Saturday of "
        "November?",
        "A brass hand bell.",
    ),
    (
        "How many arches does the stone viaduct that carries the northern railway over the river at "
        "Riverside have?",
        "Twenty-one.",
    ),
    (
        "What was the name of the steam ferry that carried passengers across the lake to Fairhaven "
        "until 1952?",
        "The Morning Star.",
    ),
    (
        "Which flower did the gardeners of Brookfield plant along the canal to mark the centenary of "
        "the town school?",
        "Blue irises.",
    ),
)
BENCHMARK_NAME = "benchmark.jsonl"
#: The benchmark items the contaminated pages quote, by the page's ordinal (more pages: round again).
QUOTED_ITEMS = (7, 14, 2)


def benchmark_id(index: int) -> str:
    """The id of the benchmark's item ``index`` (0-based): ``trivia-01`` …"""
    return f"trivia-{index + 1:02d}"


def quoted_item(ordinal: int) -> int:
    """The index of the benchmark item the ``ordinal``-th contaminated page quotes."""
    return QUOTED_ITEMS[ordinal % len(QUOTED_ITEMS)]


def benchmark_quote(ordinal: int) -> str:
    """The paragraph of the ``ordinal``-th contaminated page: a quiz column that quotes a benchmark
    question and its answer word for word."""
    question, answer = DEMO_BENCHMARK[quoted_item(ordinal)]
    return (
        f"Readers who tried last week's quiz wrote in about one question above all: {question} "
        f"The answer, as many of them already knew: {answer}"
    )


def build_demo_benchmark(dest: Path) -> Path:
    """Write the demo's evaluation set, ``dest/benchmark.jsonl`` (``DEMO_BENCHMARK``); return its path."""
    path = Path(dest) / BENCHMARK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        json.dumps({"id": benchmark_id(i), "question": q, "answer": a}, ensure_ascii=False)
        for i, (q, a) in enumerate(DEMO_BENCHMARK)
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def build_demo_filters(dest: Path) -> tuple[Path, Path]:
    """Write the demo's URL blocklist and lexicon under ``dest`` (see ``DEMO_BLOCKLIST``,
    ``DEMO_LEXICON``); return (blocklist root, lexicon folder)."""
    blocklist, lexicon = Path(dest) / "blocklist", Path(dest) / "lexicon"
    for category, domains in DEMO_BLOCKLIST.items():
        (blocklist / category).mkdir(parents=True, exist_ok=True)
        (blocklist / category / "domains").write_text("\n".join(domains) + "\n", encoding="utf-8")
    lexicon.mkdir(parents=True, exist_ok=True)
    for language, words in DEMO_LEXICON.items():
        (lexicon / language).write_text("\n".join(words) + "\n", encoding="utf-8")
    return blocklist, lexicon


_CHROME_PHRASES = [
    "Home",
    "News",
    "Sport",
    "Contact us",
    "About",
    "Subscribe to our newsletter",
    "Sign in",
    "Register",
    "Accept all cookies",
    "Manage preferences",
    "Share on Facebook",
    "Share by e-mail",
    "Read more",
    "Privacy policy",
    "Terms of use",
    "All rights reserved.",
    "Advertise with us",
    "Back to top",
    "Next page",
    "Previous",
    "Most read",
    "Related stories",
    "Follow us",
    "Load more comments",
]


def demo_quality_corpus(dest: Path, docs: int = 300, seed: int = 0) -> tuple[Path, Path]:
    """Training text for the demo's quality classifier: ``positive.txt`` holds article prose (one
    document per line), ``negative.txt`` page chrome (menus, cookie and share notices)."""
    rng = demo_rng(seed, "quality")
    prose = Prose(rng)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    positive, negative = dest / "positive.txt", dest / "negative.txt"
    positive.write_text("\n".join(prose.paragraph(3, 6) for _ in range(docs)) + "\n", encoding="utf-8")
    chrome = [" ".join(rng.choices(_CHROME_PHRASES, k=rng.randint(6, 20))) for _ in range(docs)]
    negative.write_text("\n".join(chrome) + "\n", encoding="utf-8")
    return positive, negative
