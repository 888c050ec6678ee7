"""Generated web pages for size runs: any number of distinct HTML pages as gzipped WARC files.

Each page is a small article as a crawler meets it: a header with a navigation list, a title, 3-8
paragraphs of 2-6 sentences of English-looking prose (a seeded Zipf draw over 6,000 made-up words
mixed with real stop words, so Gopher's, C4's and FineWeb's rules keep most pages), a footer with a
cookie line. About 2.4 KB of HTML and 300 words per page. Pages differ in every sentence, so dedup
removes none of them and every later stage sees the whole corpus. A page is a pure function of
``(seed, number)``: the files are the same on every run.

Used by ``pipeline_bench.py --memory`` (worker memory at 100k and 1M documents).
"""

from __future__ import annotations

import bisect
import itertools
import random
from pathlib import Path

STOP_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but "
    "have an they you were her she there been one all we their has would when more will who if out so"
).split()
SYLLABLES = (
    "ka lo men tri sa ve dor pen ul mar is ta ne ro bel quin as fi gra tol ur ce dan vo lum hes pra "
    "ci ad mo rin tu sel ga nor e lin bro pi ster"
).split()
N_WORDS = 6000


def _vocabulary(seed: int) -> list[str]:
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < N_WORDS:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))))
    ranked = sorted(words)
    rng.shuffle(ranked)  # the frequency rank: not alphabetical
    return ranked


class PageMaker:
    """Makes page ``n`` of the corpus of ``seed``."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.words = _vocabulary(seed)
        weights = [1.0 / (rank + 10) for rank in range(len(self.words))]  # Zipf-like, a flat head
        self.cumulative = list(itertools.accumulate(weights))

    def _word(self, rng: random.Random) -> str:
        if rng.random() < 0.4:
            return rng.choice(STOP_WORDS)
        x = rng.random() * self.cumulative[-1]
        return self.words[bisect.bisect_left(self.cumulative, x)]

    def _sentence(self, rng: random.Random) -> str:
        words = [self._word(rng) for _ in range(rng.randint(8, 22))]
        return words[0].capitalize() + " " + " ".join(words[1:]) + rng.choice((".", ".", ".", "?", "!"))

    def page(self, n: int) -> tuple[str, bytes]:
        """``(url, html)`` of page ``n``."""
        rng = random.Random(self.seed * 1_000_003 + n)
        title = " ".join(self._word(rng) for _ in range(rng.randint(3, 8))).capitalize()
        paragraphs = [
            " ".join(self._sentence(rng) for _ in range(rng.randint(2, 6))) for _ in range(rng.randint(3, 8))
        ]
        nav = "".join(f'<li><a href="/{w}/">{w}</a></li>' for w in rng.sample(self.words[:200], 5))
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        html = (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title></head>"
            f"<body><header><ul>{nav}</ul></header><main><article><h1>{title}</h1>{body}</article></main>"
            "<footer><p>We use cookies. Read our privacy policy.</p></footer></body></html>"
        )
        return f"https://site{n % 997}.example.org/articles/{n}.html", html.encode()


def write_generated_warcs(pages: int, files: int, folder: Path, seed: int = 0) -> list[Path]:
    """``pages`` generated pages as ``files`` gzipped WARC files of consecutive pages (one gzip member per
    record, Common Crawl's layout)."""
    from fastwarc.stream_io import GzipWriter
    from fastwarc.warc import WarcRecord, WarcRecordType

    folder.mkdir(parents=True, exist_ok=True)
    maker = PageMaker(seed)
    paths = []
    bounds = [pages * i // files for i in range(files + 1)]
    for i in range(files):
        path = folder / f"generated-{i:03d}.warc.gz"
        with open(path, "wb") as fh:
            writer = GzipWriter(fh)
            for n in range(bounds[i], bounds[i + 1]):
                url, body = maker.page(n)
                http = (
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                rec = WarcRecord()
                record_id = f"<urn:uuid:{seed:08d}-0000-4000-8000-{n:012d}>"
                rec.init_headers(WarcRecordType.response, record_id.encode())
                rec.headers["WARC-Target-URI"] = url
                rec.headers["WARC-Date"] = "2024-06-01T00:00:00Z"
                rec.headers["WARC-Identified-Payload-Type"] = "text/html"
                rec.headers["Content-Type"] = "application/http; msgtype=response"
                rec.set_bytes_content(http + body)
                rec.write(writer)
                writer.finish()
            writer.close()
        paths.append(path)
    return paths
