"""The ``loom`` command line: run, plan, demo, stats, validate, export, pack, inspect, submit,
filters, tokenizer."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tarfile
from pathlib import Path

from jobs.spec import load_job
from pipeline.config import JobSpecError, is_remote

log = logging.getLogger("loom")


def _setup_logging(verbose: bool) -> None:
    from jobs.logs import FORMAT, TerminalHandler

    handler = TerminalHandler()  # follows sys.stderr, so a live progress line prints log lines above it
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])


def _progress(args: argparse.Namespace):
    """A live line per step on a terminal; without one, the log lines (jobs/progress.py)."""
    from jobs.progress import JobProgress

    return JobProgress.for_terminal(verbose=args.verbose)


def cmd_run(args: argparse.Namespace) -> int:
    from jobs.run import run_job

    spec = load_job(args.job, output=_out(args.out))
    outcome = run_job(
        spec,
        address=args.address,
        retry_images=args.retry_images,
        progress=_progress(args),
        verbose=args.verbose,
    )
    _say_outcome(outcome)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from jobs.plan import MissingInputs, plan_data, render_plan

    spec = load_job(args.job, output=_out(args.out))
    if args.json:
        sys.stdout.write(json.dumps(plan_data(spec), indent=1) + "\n")
        return 0
    try:
        lines = render_plan(spec)
    except MissingInputs as err:  # the graph still shows; the error is the usual one line
        sys.stdout.write("\n".join(err.lines) + "\n")
        raise
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _out(out: str | None) -> str | None:
    """``--out`` is relative to the current folder (the spec's own ``output``, to the spec's)."""
    return out if out is None or is_remote(out) else str(Path(out).resolve())


def _say_outcome(outcome) -> None:
    from jobs.run import log_files

    tokens = f", {outcome.tokens:,} tokens" if outcome.tokenizer else ""
    files = ", ".join(log_files(outcome.logs))
    sys.stdout.write(
        f"done: {outcome.samples:,} samples in {outcome.shards} shards{tokens}\n"
        f"  shards:    {outcome.output}/shards/\n"
        f"  manifest:  {outcome.manifest}\n"
        f"  stats:     {outcome.stats}   (loom stats {outcome.output})\n"
        + (f"  tokenizer: {outcome.tokenizer}\n" if outcome.tokenizer else "")
        + (f"  train:     {outcome.train}   ({outcome.train_note})\n" if outcome.train else "")
        + (
            f"  next:      loom pack {outcome.output}   (how it packs into 8k sequences)\n"
            f"             loom export {outcome.output}   (Megatron-Energon, Megatron-LM, HF datasets)\n"
            if outcome.tokenizer
            else ""
        )
        + (f"  report:    {outcome.report}   (open it in a browser)\n" if outcome.report else "")
        + (f"  logs:      {outcome.logs}/   ({files})\n" if files else "")
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from jobs.demo import demo_job
    from jobs.run import run_job

    with demo_job(Path(args.out), pages=args.pages, image_port=args.image_port) as spec:
        outcome = run_job(spec, address=args.address, progress=_progress(args), verbose=args.verbose)
    _say_outcome(outcome)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pipeline.storage import Storage
    from report import REPORT
    from shards.pack import load_records
    from shards.stats import load_stats, render_stats

    storage = Storage(args.out)
    stats = load_stats(storage)
    if args.json:
        sys.stdout.write(json.dumps(stats, indent=1, sort_keys=True) + "\n")
    else:
        render_stats(stats, Console(), load_records(storage))
        if storage.exists(REPORT):  # the plots of these tables and sample documents
            sys.stdout.write(f"report: {storage.uri(REPORT)}\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from pipeline.storage import Storage
    from report import ReportError, build_report

    try:
        result = build_report(Storage(args.out), samples=args.samples, seed=args.seed)
    except ReportError as err:
        sys.stderr.write(f"loom: error: {err}\n")
        return 2
    sys.stdout.write(f"report: {result.path}   ({result.bytes / 1e6:.1f} MB, {result.seconds:.1f} s)\n")
    for missing in result.missing:
        sys.stdout.write(f"  not in the report: {missing}\n")
    if args.open:
        if is_remote(result.path):
            sys.stdout.write("  --open: the report is on S3; copy it here to open it\n")
        else:
            webbrowser.open(Path(result.path).as_uri())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.storage import Storage
    from shards.validate import validate_output

    report = validate_output(Storage(args.out))
    for problem in report.problems[:50]:
        sys.stdout.write(f"problem: {problem}\n")
    if len(report.problems) > 50:
        sys.stdout.write(f"... and {len(report.problems) - 50} more\n")
    verdict = "ok" if report.ok else f"{len(report.problems)} problems"
    sys.stdout.write(f"{report.shards} shards, {report.samples:,} samples: {verdict}\n")
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace) -> int:
    from pipeline.storage import Storage
    from shards.export import EXPORTS, export

    storage = Storage(args.out)
    try:
        done = export(storage, args.folder, tuple(args.to or EXPORTS))
    except ValueError as err:
        raise JobSpecError(str(err)) from None
    where = storage.uri(done.folder)
    sys.stdout.write(
        f"exported {done.folder}/: {done.shards} shards, {done.samples:,} samples, {done.tokens:,} tokens\n"
        + "".join(f"  {storage.uri(f)}\n" for f in done.files)
        + "read it with (docs/TRAINING.md):\n"
        + f"  energon:  megatron.energon.get_train_dataset('{where}', split_part='train', ...)\n"
        + f"  megatron: IndexedDataset('{storage.uri(f'export/megatron/{done.folder}_text_document')}')\n"
        + f"  hf:       datasets.load_dataset('{where}', split='train')\n"
    )
    return 0


def cmd_pack(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from pipeline.storage import Storage
    from shards.loader import LoaderConfig
    from shards.pack import pack_summary, record, render_pack
    from shards.stream import LoaderError

    options = {
        "seq_len": args.seq_len,
        "image_tokens": args.image_tokens,
        "max_images": args.max_images,
        "epochs": args.epochs,
        "folder": args.folder,
        "subset": args.subset,
        "images": "none",
        "on_error": "raise" if args.strict else "skip",
    }
    try:
        summary = pack_summary(args.out, LoaderConfig(**options))
    except ValidationError as err:
        raise JobSpecError("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())) from None
    except LoaderError as err:
        raise JobSpecError(str(err)) from None
    record(Storage(args.out), summary)
    if args.json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    else:
        kept = Storage(args.out).uri("pack.json")
        sys.stdout.write(render_pack(summary) + f"  kept in {kept} (loom stats)\n")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    import os

    from pipeline.storage import Storage
    from shards.inspect import describe, read_samples

    folder, name = os.path.split(args.shard)
    for i, doc in enumerate(read_samples(Storage(folder or "."), name)):
        if i == args.n:
            break
        sys.stdout.write(describe(doc) + "\n\n")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from jobs.submit import submit

    def announce(submission_id: str) -> None:
        sys.stdout.write(f"submitted: {submission_id}\n")
        sys.stdout.flush()

    return submit(Path(args.job), args.address, output=args.out, wait=not args.no_wait, announce=announce)


VERBOSE_HELP = "debug logging; `run` and `demo` also show Ray's log lines here (else in OUT/logs/ray.log)"


def _verbose_here(parser: argparse.ArgumentParser) -> None:
    """``-v`` after the command too (``loom demo -v``); SUPPRESS keeps ``loom -v demo`` working."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="loom", description="Loom: web data to multimodal training shards.")
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a job spec (local Ray unless --address/RAY_ADDRESS)")
    run.add_argument("job", help="the job spec (TOML)")
    run.add_argument("--out", help="output root, overrides the spec's `output`")
    run.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, else local Ray)")
    run.add_argument(
        "--retry-images",
        action="store_true",
        help="fetch again the image URLs that failed with a retryable status (timeouts, 5xx, 429)",
    )
    _verbose_here(run)
    run.set_defaults(fn=cmd_run)

    plan = sub.add_parser("plan", help="show the step graph, what is done and what a run would rerun")
    plan.add_argument("job", help="the job spec (TOML)")
    plan.add_argument("--out", help="output root, overrides the spec's `output`")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(fn=cmd_plan)

    demo = sub.add_parser("demo", help="build a small corpus and run the default job on it")
    demo.add_argument("--out", default="out/demo", help="where the corpus and results go (default out/demo)")
    demo.add_argument("--pages", type=int, default=120, help="pages in the demo corpus")
    demo.add_argument("--address", help="Ray cluster address (default: local Ray)")
    demo.add_argument(
        "--image-port", type=int, help="port of the demo's image server on 127.0.0.1 (default 18765)"
    )
    _verbose_here(demo)
    demo.set_defaults(fn=cmd_demo)

    stats = sub.add_parser("stats", help="show the statistics of a finished job")
    stats.add_argument("out", help="the job's output root")
    stats.add_argument("--json", action="store_true", help="print stats.json instead of tables")
    stats.set_defaults(fn=cmd_stats)

    rep = sub.add_parser("report", help="write OUT/report/index.html: the run as one offline page")
    rep.add_argument("out", help="a finished job's output root")
    rep.add_argument("--open", action="store_true", help="open it in the default browser")
    rep.add_argument("--samples", type=int, default=12, help="kept documents shown (12)")
    rep.add_argument("--seed", type=int, default=0, help="the seed of the samples (0)")
    rep.set_defaults(fn=cmd_report)

    exp = sub.add_parser(
        "export", help="write what Megatron-Energon, Megatron-LM and HF datasets need to read the shards"
    )
    exp.add_argument("out", help="a job's output root")
    exp.add_argument("--folder", choices=["train", "shards"], help="default: train/ when the job made it")
    exp.add_argument("--to", nargs="+", choices=["energon", "megatron", "hf"], help="default: all three")
    exp.set_defaults(fn=cmd_export)

    pack = sub.add_parser(
        "pack", help="dry-run the training loader: sequences, fill, skips (docs/TRAINING.md)"
    )
    pack.add_argument("out", help="a job's output root")
    pack.add_argument("--seq-len", type=int, default=8192, help="tokens per sequence (default 8192)")
    pack.add_argument("--image-tokens", type=int, default=64, help="placeholders per image (default 64)")
    pack.add_argument("--max-images", type=int, help="images per sequence at most")
    pack.add_argument("--epochs", type=int, default=1, help="passes over the data (default 1)")
    pack.add_argument("--folder", choices=["train", "shards"], help="default: train/ when the job made it")
    pack.add_argument("--subset", type=float, help="a nested subset of train/ (a fraction in subsets.json)")
    pack.add_argument(
        "--strict", action="store_true", help="stop at the first bad sample (default: count it)"
    )
    pack.add_argument("--json", action="store_true", help="one JSON object")
    pack.set_defaults(fn=cmd_pack)

    val = sub.add_parser("validate", help="re-read every shard and check it against the manifest")
    val.add_argument("out", help="the job's output root")
    val.set_defaults(fn=cmd_validate)

    ins = sub.add_parser("inspect", help="show the documents of a shard")
    ins.add_argument("shard", help="a shard (.tar), local or s3://")
    ins.add_argument("-n", type=int, default=5, help="documents to show (default 5)")
    ins.set_defaults(fn=cmd_inspect)

    sbm = sub.add_parser("submit", help="run a job spec as a Ray job on a cluster")
    sbm.add_argument("job", help="the job spec (TOML)")
    sbm.add_argument("--address", required=True, help="the cluster's dashboard, e.g. http://HOST:8265")
    sbm.add_argument("--out", help="output root, overrides the spec's `output`")
    sbm.add_argument("--no-wait", action="store_true", help="print the submission id and return")
    sbm.set_defaults(fn=cmd_submit)

    from filters.cli import add_commands as add_filters_commands
    from tokenizer.cli import add_commands as add_tokenizer_commands

    add_filters_commands(sub)
    add_tokenizer_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return args.fn(args)
    except (JobSpecError, FileNotFoundError) as err:
        sys.stderr.write(f"loom: error: {err}\n")
        return 2
    except tarfile.TarError as err:
        sys.stderr.write(f"loom: error: not a readable shard: {err}\n")
        return 2
    except Exception as err:  # failures that are the user's to fix are one line, not a traceback
        from jobs.submit import SubmitError
        from pipeline.runner import StepFailed

        if isinstance(err, StepFailed | SubmitError):
            sys.stderr.write(f"loom: error: {err}\n")
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
