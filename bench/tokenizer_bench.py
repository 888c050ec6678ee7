"""Benchmark: Loom's BPE tokenizer vs a sentencepiece BPE, and the tokenization stage vs bare HF.

    .venv/bin/python bench/tokenizer_bench.py [--quick] [--vocab-size V] [--mb M] [--reps R] [--data-dir DIR]

**Documents.** Real text from ``../shared/data``, NFC-normalized first (both tokenizers see the same
text; Loom's stage then finds nothing to normalize):

* ``articles``: the 130 Mozilla Readability articles (``html/readability/test-pages/*/expected.html``
  through ``pipeline.extract.extract_html``), a document's text its text blocks joined by a blank line;
* ``sentences:<iso>``: the lingua sentences of 20 languages (CJK, Arabic, Hindi, …), each file cut
  into documents of 20 lines joined by newlines;
* ``copycat``: both texts (``src_doc``, ``target_doc``) of the 125 pairs of Common Crawl pages;
* ``captions``: the 10,000 LAION captions (``TEXT``), 50 to a document, joined by newlines.

**Split.** A document is held back when the xxh3-64 hash of its key is 0 modulo 5 (about 20%),
else it is a training document. The key is the text, except for copycat where it is the pair id:
the two pages of a pair are near-duplicates, so they fall on the same side.

**Training** (the training documents, ``--vocab-size`` V: 16,000; quick 4,000 on every other
training document). Each trainer runs in its own process (this script with ``--train-child``) with
one thread (``RAYON_NUM_THREADS=1``; sentencepiece ``num_threads=1``), which first reads the
documents, then measures: ``*_train_s`` is the wall time of training alone, ``*_train_peak_mb`` the
process's peak resident memory (``VmHWM``) minus its value just before training (imports and
documents loaded). ``VmHWM`` and not ``ru_maxrss``: Linux keeps ``ru_maxrss`` across exec, so a
child's figure can be the peak of the process it was forked from (as ``bench/minhash_bench.py`` notes).

* ``loom``: ``tokenizer.train.train_tokenizer`` with ``TokenizerConfig(vocab_size=V)`` (NFC, min
  frequency 2, 16 specials), fed batches of 1,024 documents as the ``tokenizer`` step does.
* ``sentencepiece`` 0.2.3: ``SentencePieceTrainer.train`` with ``model_type="bpe"``, the same V,
  ``byte_fallback``, ``character_coverage=0.9995``, ``normalization_rule_name="identity"`` (the text
  is NFC already), ``remove_extra_whitespaces=False`` (so that, like Loom, it encodes every byte of
  the text it is given instead of dropping repeated spaces), ``max_sentence_length=1<<20``,
  ``input_sentence_size=0`` (all). It is fed the same documents, one per sentence, through
  ``sentence_iterator``: newlines stay in the text (sentencepiece keeps them as characters and
  decodes the text back exactly), so both tokenizers are trained and measured on identical strings.

**Bytes per token** on the held-back documents: their UTF-8 bytes summed over their tokens summed,
Loom's ids from ``Encoder.encode_texts`` (no specials), sentencepiece's from ``encode`` (no BOS/EOS);
``*_tokens`` are the token totals. ``ratio_bytes_per_token`` = loom / sentencepiece (≥ 0.98: within
2%). ``bytes_per_token_by_group`` gives the same per group of documents (articles, each lingua
language, copycat, captions). Both vocabularies count their specials (Loom 16, sentencepiece 3:
``<unk> <s> </s>``) and 256 byte tokens; sentencepiece's also holds every character of its coverage
(thousands here, CJK mostly) as a token, which at the quick V of 4,000 leaves it few merges: the
quick run's bytes per token are a smoke test, not the comparison (that is V = 16,000).

**Throughput per core** (one process, one thread: ``RAYON_NUM_THREADS=1`` and
``TOKENIZERS_PARALLELISM=false`` set before tokenizers is imported; tiktoken with ``num_threads=1``).
All the documents (training and held back), repeated to about ``--mb`` MB of UTF-8 (20; quick 5:
whole copies, so at least one), in batches of 256 documents (the pipeline's ``batch_rows``),
everything built before the clock starts. ``--reps`` passes (3; quick 2), each pass timing the four
contenders in turn (a busy moment of the shared machine then does not fall on one contender's every
pass); the best pass of each counts, in MB/s of UTF-8 text:

* ``stage_mb_s``: the Loom stage ``tokenizer.step.Tokenize`` on Arrow tables (``id``, ``texts`` with
  one text block per document): NFC checks, tiktoken, the ``tokens`` and ``image_tokens`` arrays;
* ``encode_batch_mb_s``: bare ``Tokenizer.encode_batch(texts, add_special_tokens=False)``;
* ``encode_batch_fast_mb_s``: ``Tokenizer.encode_batch_fast`` (no offsets);
* ``encode_texts_mb_s``: ``Encoder.encode_texts`` alone (tiktoken, lists of ids, no Arrow).

``ratio_stage_vs_encode_batch`` = stage / encode_batch (the issue's target: ≥ 4).
``identical_documents`` of ``documents``: the distinct documents whose stage ids (``<s>`` and ``</s>``
taken off) equal HF ``encode_batch``'s, in a pass apart from the timed ones.

The last line printed is one JSON object with all figures. Without the data folder, it says so
(``"skipped"``) and the exit code is 0.
"""

from __future__ import annotations

import os

# One thread for HF tokenizers, here and in the trainer processes (they inherit the environment):
# set before tokenizers is imported.
os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, not another's

DATA_DIR = ROOT.parent / "shared" / "data"
PAGES = Path("html") / "readability" / "test-pages"
SENTENCES = Path("langid") / "lingua" / "sentences"
COPYCAT = Path("dedup") / "copycat" / "pairs.jsonl"
CAPTIONS = Path("pairs") / "img2dataset" / "test_10000.parquet"
LINES_PER_DOC = 20
CAPTIONS_PER_DOC = 50
HELD_BACK_MODULO = 5
TRAIN_BATCH = 1024
BATCH = 256
TRAINERS = ("loom", "sentencepiece")

log = logging.getLogger("bench.tokenizer")

#: A document: (group, split key, NFC text).
Doc = tuple[str, str, str]


# --------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def article_docs(data_dir: Path) -> list[Doc]:
    from filters.base import joined_text
    from pipeline.config import ExtractConfig
    from pipeline.extract import extract_html
    from pipeline.sources.commoncrawl import nodes_to_lists

    docs = []
    for page in sorted((data_dir / PAGES).iterdir()):
        html = (page / "expected.html").read_text(encoding="utf-8", errors="replace")
        extracted = extract_html(html, "http://fakehost/test/page.html", ExtractConfig())
        blocks, _ = nodes_to_lists(extracted.nodes)
        text = nfc(joined_text(blocks))
        if text:
            docs.append(("articles", text, text))
    return docs


def sentence_docs(data_dir: Path) -> list[Doc]:
    docs = []
    for path in sorted((data_dir / SENTENCES).glob("*.txt")):
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        for start in range(0, len(lines), LINES_PER_DOC):
            text = nfc("\n".join(lines[start : start + LINES_PER_DOC]))
            docs.append((f"sentences:{path.stem}", text, text))
    return docs


def copycat_docs(data_dir: Path) -> list[Doc]:
    docs = []
    with open(data_dir / COPYCAT, encoding="utf-8") as fh:
        for line in fh:
            pair = json.loads(line)
            for field in ("src_doc", "target_doc"):
                if pair.get(field):
                    docs.append(("copycat", pair["pair_id"], nfc(pair[field])))
    return docs


def caption_docs(data_dir: Path) -> list[Doc]:
    captions = [c for c in pq.read_table(data_dir / CAPTIONS, columns=["TEXT"])["TEXT"].to_pylist() if c]
    docs = []
    for start in range(0, len(captions), CAPTIONS_PER_DOC):
        text = nfc("\n".join(captions[start : start + CAPTIONS_PER_DOC]))
        docs.append(("captions", text, text))
    return docs


def read_documents(data_dir: Path) -> list[Doc]:
    return article_docs(data_dir) + sentence_docs(data_dir) + copycat_docs(data_dir) + caption_docs(data_dir)


def held_back(doc: Doc) -> bool:
    return xxhash.xxh3_64_intdigest(doc[1].encode("utf-8")) % HELD_BACK_MODULO == 0


def utf8_bytes(texts: list[str]) -> int:
    return sum(len(t.encode("utf-8")) for t in texts)


# --------------------------------------------------------------------------------------------------
# Training, each trainer in its own process
# --------------------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``, MB)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def train_loom(texts: list[str], vocab_size: int, work: Path) -> int:
    from tokenizer.config import TokenizerConfig
    from tokenizer.train import train_tokenizer

    batches = (texts[i : i + TRAIN_BATCH] for i in range(0, len(texts), TRAIN_BATCH))
    tok = train_tokenizer(batches, TokenizerConfig(vocab_size=vocab_size))
    tok.save(str(work / "loom.json"))
    return tok.get_vocab_size()


def train_sentencepiece(texts: list[str], vocab_size: int, work: Path) -> int:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(work / "sentencepiece"),
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        character_coverage=0.9995,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        input_sentence_size=0,  # all
        max_sentence_length=1 << 20,
        num_threads=1,
        minloglevel=2,
    )
    return spm.SentencePieceProcessor(model_file=str(work / "sentencepiece.model")).get_piece_size()


def train_child(trainer: str, vocab_size: int, work: Path) -> None:
    """In the trainer's own process: read the training documents, train, write the figures."""
    train = train_loom if trainer == "loom" else train_sentencepiece
    if trainer == "loom":  # the trainer's modules are loaded before the baseline
        import tokenizer.train  # noqa: F401
    else:
        import sentencepiece  # noqa: F401
    texts = json.loads((work / "train.json").read_text(encoding="utf-8"))
    baseline = peak_rss_mb()
    t0 = time.perf_counter()
    size = train(texts, vocab_size, work)
    seconds = time.perf_counter() - t0
    figures = {"seconds": seconds, "peak_mb": peak_rss_mb() - baseline, "vocab_size": size}
    (work / f"{trainer}.figures.json").write_text(json.dumps(figures), encoding="utf-8")


def run_trainer(trainer: str, vocab_size: int, work: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--train-child", trainer, "--vocab-size", str(vocab_size)]
    subprocess.run([*cmd, "--work", str(work)], check=True)
    return json.loads((work / f"{trainer}.figures.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------
# Throughput
# --------------------------------------------------------------------------------------------------


def tables(texts: list[str]) -> list[pa.Table]:
    """The stage's input: tables of ``BATCH`` documents with ``id`` and ``texts`` (one block each)."""
    ids = [str(i) for i in range(len(texts))]
    table = pa.table({"id": ids, "texts": [[t] for t in texts]})
    return [table.slice(i, BATCH) for i in range(0, table.num_rows, BATCH)]


def batches(texts: list[str]) -> list[list[str]]:
    return [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]


def stage_ids(stage: Any, texts: list[str]) -> list[list[int]]:
    """The stage's ids of each text, ``<s>`` and ``</s>`` taken off."""
    out = []
    for table in tables(texts):
        out += [ids[1:-1] for ids in stage(table)["tokens"].to_pylist()]
    return out


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def bytes_per_token(texts: list[str], ids: list[list[int]]) -> float:
    return utf8_bytes(texts) / sum(map(len, ids))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="smaller vocabulary, sample, text (under a minute)")
    ap.add_argument("--vocab-size", type=int, default=None, help="tokens of both (16,000; quick 4,000)")
    ap.add_argument("--mb", type=float, default=None, help="MB of text for the throughput (20; quick 5)")
    ap.add_argument("--reps", type=int, default=None, help="timed passes, the best counts (3; quick 2)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--train-child", choices=TRAINERS, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.train_child:
        train_child(args.train_child, args.vocab_size, args.work)
        return 0
    if not (args.data_dir / PAGES).is_dir():
        print(f"no test data under {args.data_dir} (see ../shared/data/README.md)", file=sys.stderr)
        print(json.dumps({"bench": "tokenizer", "skipped": "no test data"}))
        return 0
    vocab_size = args.vocab_size or (4000 if args.quick else 16000)
    target_mb = args.mb or (5.0 if args.quick else 20.0)
    reps = args.reps or (2 if args.quick else 3)

    from tokenizers import Tokenizer

    from tokenizer.encode import Encoder
    from tokenizer.step import Tokenize

    log.info("reading the documents")
    docs = read_documents(args.data_dir)
    held = [d for d in docs if held_back(d)]
    train = [d[2] for d in docs if not held_back(d)]
    if args.quick:
        train = train[::2]
    held_texts = [d[2] for d in held]
    log.info(
        "%d documents (%.2f MB): %d for training (%.2f MB), %d held back (%.2f MB)",
        len(docs), utf8_bytes([d[2] for d in docs]) / 1e6, len(train), utf8_bytes(train) / 1e6,
        len(held), utf8_bytes(held_texts) / 1e6,
    )  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench-tokenizer-") as tmp:
        work = Path(tmp)
        (work / "train.json").write_text(json.dumps(train), encoding="utf-8")
        trained = {}
        for trainer in TRAINERS:
            log.info("training %s, vocab_size %d", trainer, vocab_size)
            trained[trainer] = run_trainer(trainer, vocab_size, work)
            log.info("%s: %s", trainer, trained[trainer])
        tok = Tokenizer.from_file(str(work / "loom.json"))
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(work / "sentencepiece.model"))
    if trained["loom"]["vocab_size"] < vocab_size:
        log.warning("loom's trainer filled only %d of %d tokens", trained["loom"]["vocab_size"], vocab_size)

    enc = Encoder(tok)
    loom_ids = enc.encode_texts(held_texts)
    spm_ids = sp.encode(held_texts)
    by_group: dict[str, dict[str, list]] = defaultdict(lambda: {"texts": [], "loom": [], "spm": []})
    for (group, _, text), ours, theirs in zip(held, loom_ids, spm_ids, strict=True):
        by_group[group]["texts"].append(text)
        by_group[group]["loom"].append(ours)
        by_group[group]["spm"].append(theirs)
    groups = {}
    for group, g in sorted(by_group.items()):
        ours, theirs = bytes_per_token(g["texts"], g["loom"]), bytes_per_token(g["texts"], g["spm"])
        groups[group] = {
            "documents": len(g["texts"]),
            "loom": round(ours, 3),
            "sentencepiece": round(theirs, 3),
            "ratio": round(ours / theirs, 3),
        }
    loom_bpt, spm_bpt = bytes_per_token(held_texts, loom_ids), bytes_per_token(held_texts, spm_ids)

    distinct = [d[2] for d in docs]
    copies = max(1, round(target_mb * 1e6 / utf8_bytes(distinct)))
    texts = distinct * copies
    mb = utf8_bytes(texts) / 1e6
    stage = Tokenize(lambda: enc)
    stage_in, hf_in = tables(texts), batches(texts)
    log.info("throughput: %d documents (%d copies), %.1f MB, best of %d", len(texts), copies, mb, reps)
    stage(stage_in[0])  # warm-up

    def run_stage() -> None:
        for table in stage_in:
            stage(table)

    def run_encode_batch() -> None:
        for batch in hf_in:
            tok.encode_batch(batch, add_special_tokens=False)

    def run_encode_batch_fast() -> None:
        for batch in hf_in:
            tok.encode_batch_fast(batch, add_special_tokens=False)

    def run_encode_texts() -> None:
        for batch in hf_in:
            enc.encode_texts(batch)

    runs = {
        "stage": run_stage,
        "encode_batch": run_encode_batch,
        "encode_batch_fast": run_encode_batch_fast,
        "encode_texts": run_encode_texts,
    }
    seconds = dict.fromkeys(runs, float("inf"))
    for rep in range(reps):  # in turn, so that a busy moment of the machine does not hit one alone
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            elapsed = time.perf_counter() - t0
            seconds[name] = min(seconds[name], elapsed)
            log.info("pass %d, %s: %.2f MB/s", rep + 1, name, mb / elapsed)

    log.info("identity: %d documents", len(distinct))
    reference = [e.ids for e in tok.encode_batch(distinct, add_special_tokens=False)]
    same = [a == b for a, b in zip(stage_ids(stage, distinct), reference, strict=True)]
    identical = sum(same)
    if identical < len(distinct):
        first = same.index(False)
        log.warning("ids differ from HF's on %d documents, first: %r", len(same) - identical, docs[first][:2])

    result = {
        "bench": "tokenizer",
        "vocab_size": vocab_size,
        "loom_vocab_size": trained["loom"]["vocab_size"],
        "sentencepiece_vocab_size": trained["sentencepiece"]["vocab_size"],
        "train_documents": len(train),
        "train_mb": round(utf8_bytes(train) / 1e6, 2),
        "held_back_documents": len(held),
        "held_back_mb": round(utf8_bytes(held_texts) / 1e6, 2),
        "loom_tokens": sum(map(len, loom_ids)),
        "sentencepiece_tokens": sum(map(len, spm_ids)),
        "loom_bytes_per_token": round(loom_bpt, 4),
        "sentencepiece_bytes_per_token": round(spm_bpt, 4),
        "ratio_bytes_per_token": round(loom_bpt / spm_bpt, 4),
        "bytes_per_token_by_group": groups,
        "loom_train_s": round(trained["loom"]["seconds"], 2),
        "sentencepiece_train_s": round(trained["sentencepiece"]["seconds"], 2),
        "loom_train_peak_mb": round(trained["loom"]["peak_mb"], 1),
        "sentencepiece_train_peak_mb": round(trained["sentencepiece"]["peak_mb"], 1),
        "backend": enc.backend,
        "throughput_documents": len(texts),
        "throughput_mb": round(mb, 2),
        "stage_mb_s": round(mb / seconds["stage"], 2),
        "encode_batch_mb_s": round(mb / seconds["encode_batch"], 2),
        "encode_batch_fast_mb_s": round(mb / seconds["encode_batch_fast"], 2),
        "encode_texts_mb_s": round(mb / seconds["encode_texts"], 2),
        "ratio_stage_vs_encode_batch": round(seconds["encode_batch"] / seconds["stage"], 2),
        "identical_documents": identical,
        "documents": len(distinct),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
