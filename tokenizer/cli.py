"""``loom tokenizer train``: train Loom's BPE outside a job, on a job's output or on text files.

    loom tokenizer train --input out/demo/result --out tok/ --vocab-size 32000

``--input`` takes Loom output roots (their final documents: after filters, image join and dedup),
Loom document parquet files or folders, parquet files with a ``text`` column, JSON lines with
``text``, or ``.txt`` files (a file is one document). It writes ``tokenizer.json`` and
``tokenizer.card.json`` into ``--out``; ``tokenizer = "tok/tokenizer.json"`` in a job spec uses it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pipeline.config import JobSpecError
from pipeline.graph import state_path
from tokenizer.config import TokenizerConfig
from tokenizer.sample import Sample, file_documents
from tokenizer.train import save, train_from_sample


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``tokenizer train`` on ``loom``'s subcommands."""
    tokenizer = subparsers.add_parser("tokenizer", help="train the BPE tokenizer outside a job")
    sub = tokenizer.add_subparsers(dest="tokenizer_command", required=True)
    defaults = TokenizerConfig()
    p = sub.add_parser("train", help="train a byte-level BPE on a sample of documents")
    p.add_argument(
        "--input", nargs="+", required=True, type=Path, metavar="PATH", help="outputs or text files"
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for tokenizer.json + card")
    p.add_argument("--vocab-size", type=int, default=defaults.vocab_size, help="tokens, specials included")
    p.add_argument("--sample-bytes", type=int, default=defaults.sample_bytes, help="text to train on")
    p.add_argument("--seed", type=int, default=defaults.seed, help="the sample's seed")
    p.add_argument("--min-frequency", type=int, default=defaults.min_frequency, help="of a pair to merge")
    p.add_argument("--split-digits", action="store_true", help="every digit its own token")
    p.add_argument("--no-nfc", action="store_true", help="no Unicode normalization")
    p.add_argument("--special", action="append", default=[], metavar="TOKEN", help="one more special token")
    p.set_defaults(fn=cmd_train)


def final_documents_folder(root: Path) -> Path:
    """The folder of a Loom output's final documents: what its tokenizer step read (else its shards
    step), as the step's ``work/<step>/step.json`` records it."""
    for step in ("tokenizer", "shards"):
        state = root / state_path(step)
        if state.is_file():
            pattern = json.loads(state.read_text(encoding="utf-8"))["reads"]["documents"]
            return root / Path(pattern).parent
    raise FileNotFoundError(f"{root}: a Loom output without a tokenizer or shards step that ran")


def input_paths(paths: list[Path]) -> list[Path]:
    return [final_documents_folder(p) if (p / "job.json").is_file() else p for p in paths]


def cmd_train(args: argparse.Namespace) -> int:
    try:
        cfg = TokenizerConfig(
            vocab_size=args.vocab_size,
            sample_bytes=args.sample_bytes,
            seed=args.seed,
            min_frequency=args.min_frequency,
            split_digits=args.split_digits,
            normalization="none" if args.no_nfc else "nfc",
            special_tokens=args.special,
        )
        sample = Sample(file_documents(input_paths(args.input)), cfg.sample_bytes, cfg.seed)
        tok, card = train_from_sample(sample, cfg)
    except (ValueError, FileNotFoundError, JobSpecError) as err:
        first = str(err).strip().splitlines()[0]
        sys.stderr.write(f"loom: error: {first}\n")
        return 2
    tok_path, card_path = save(tok, card, args.out)
    sys.stdout.write(
        f"tokenizer: {card['vocab_size']:,} tokens (asked {cfg.vocab_size:,}), "
        f"trained in {card['train_seconds']}s\n"
        f"  sample: {card['sample_bytes']:,} bytes of {card['corpus_bytes']:,}, "
        f"{card['sample_documents']:,} documents, seed {cfg.seed}, sha256 {card['sample_sha256'][:16]}…\n"
        f"  tokenizer: {tok_path}\n"
        f"  card:      {card_path}\n"
    )
    return 0
