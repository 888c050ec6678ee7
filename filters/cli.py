"""``loom filters …``: train the fastText classifiers the filters step runs.

``loom filters train-quality --positive GOOD... --negative BAD... --out quality.bin`` trains a
quality classifier (P(good text)); ``train-nsfw`` takes the *unsafe* examples as positives, so its
score is P(unsafe). Both hold out part of each class, print the held-out precision and recall, and
write the model and its card (``<model>.json``); point ``[filters.quality] model`` (or
``[filters.nsfw] model``) of a job spec at the model to use it. See :mod:`filters.classifier` for
the input formats.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from filters.classifier import card_path, train_classifier

_COMMANDS = {
    "quality": (
        "train the quality classifier (score: P(good text))",
        "documents of the quality you want (files or folders: .txt a line each, .jsonl, .parquet)",
        "documents you do not want: boilerplate, spam, machine-made text",
    ),
    "nsfw": (
        "train the NSFW classifier (score: P(unsafe))",
        "unsafe documents (adult, violent, hateful…): the positive class is what the score measures",
        "safe documents of the same sources",
    ),
}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``filters train-quality`` and ``filters train-nsfw`` on ``loom``'s subcommands."""
    filters = subparsers.add_parser("filters", help="train the classifiers of the filters step")
    sub = filters.add_subparsers(dest="filters_command", required=True)
    for name, (help_text, positive_help, negative_help) in _COMMANDS.items():
        p = sub.add_parser(f"train-{name}", help=help_text, description=help_text)
        p.add_argument("--positive", nargs="+", required=True, type=Path, metavar="PATH", help=positive_help)
        p.add_argument("--negative", nargs="+", required=True, type=Path, metavar="PATH", help=negative_help)
        p.add_argument("--out", required=True, type=Path, metavar="MODEL", help="the model file to write")
        p.add_argument("--holdout", type=float, default=0.2, help="share of each class held out (0.2)")
        p.add_argument("--seed", type=int, default=1, help="shuffle and training seed (1)")
        p.add_argument("--epoch", type=int, default=50, help="training epochs (50)")
        p.add_argument("--lr", type=float, default=0.5, help="learning rate (0.5)")
        p.set_defaults(fn=cmd_train, classifier=name)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cmd_train(args: argparse.Namespace) -> int:
    try:
        m = train_classifier(
            args.positive,
            args.negative,
            args.out,
            holdout=args.holdout,
            seed=args.seed,
            epoch=args.epoch,
            lr=args.lr,
            name=args.classifier,
        )
    except (ValueError, FileNotFoundError) as err:
        sys.stderr.write(f"loom: error: {err}\n")
        return 2
    sys.stdout.write(
        f"{args.classifier}: trained on {m['train_positive']:,} positive + {m['train_negative']:,} negative\n"
        f"  held out: {m['holdout_positive']:,} positive + {m['holdout_negative']:,} negative\n"
        f"  precision {_fmt(m['precision'])}  recall {_fmt(m['recall'])}  F1 {_fmt(m['f1'])}"
        f"  accuracy {_fmt(m['accuracy'])}  (at {m['threshold']})\n"
        f"  model: {args.out}\n"
        f"  card:  {card_path(args.out)}\n"
    )
    return 0
