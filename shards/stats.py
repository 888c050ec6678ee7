"""``loom stats OUT``: the figures of ``stats.json`` and the manifest as readable tables.

Every table is printed through :func:`print_table`, which keeps each number whole: a numeric column
never wraps, and a table wider than the console is split into narrower tables (its first, naming
columns repeated in each) instead of being squeezed until rich cuts its cells to "…".
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.storage import Storage

TEXT_MIN = 16  # a text column (a step, reason or rule name) wraps only below this many characters


def load_stats(storage: Storage) -> dict[str, Any]:
    if not storage.exists("stats.json"):
        raise FileNotFoundError(f"{storage.uri()}: no stats.json (has the job finished?)")
    return storage.read_json("stats.json")


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@dataclass(frozen=True)
class Column:
    """A table column: its header ("\\n" puts it on two lines), whether it holds numbers (right
    aligned, never wrapped) or text (left aligned, wrapped when the console is narrow), and the group
    of related columns it belongs to."""

    header: str
    numeric: bool = True
    group: str = ""  # a table split in several keeps a group's columns together where it can


def _widest_line(text: str) -> int:
    return max(cell_len(line) for line in text.split("\n"))


def _column_width(column: Column, cells: Sequence[str]) -> int:
    """The width a column needs: its widest number, or its text up to ``TEXT_MIN`` (longer text wraps)."""
    widest = max((_widest_line(cell) for cell in cells), default=0)
    return max(_widest_line(column.header), widest if column.numeric else min(widest, TEXT_MIN))


def _split_columns(columns: Sequence[Column], widths: list[int], base: int, limit: int) -> list[list[int]]:
    """The value columns (their widths) in the fewest runs, in order, whose tables fit in ``limit``,
    each table ``base`` wide before its value columns. Of those splits, the one that cuts fewest
    groups, then the one whose widest table is narrowest. A column takes its width plus 3 (its
    padding and a border)."""
    if not widths:
        return [[]]  # a table of key columns only
    for count in range(1, len(widths) + 1):
        best: tuple[tuple[int, int], list[list[int]]] | None = None
        for cuts in itertools.combinations(range(1, len(widths)), count - 1):
            bounds = (0, *cuts, len(widths))
            runs = [list(range(a, b)) for a, b in itertools.pairwise(bounds)]
            widest = max(base + sum(widths[i] + 3 for i in run) for run in runs)
            split_groups = sum(columns[cut - 1].group == columns[cut].group for cut in cuts)
            if widest <= limit and (best is None or (split_groups, widest) < best[0]):
                best = ((split_groups, widest), runs)
        if best is not None:
            return best[1]
    return [[i] for i in range(len(widths))]  # too narrow for even one: a table per column


def print_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    keys: int = 1,
    note: str = "",
) -> None:
    """Print a table under its title, then ``note`` (what its abbreviations mean).

    If the table is wider than the console it is printed as several tables, each holding the first
    ``keys`` columns (what names a row) and as many of the others as fit, titled "(continued)" after
    the first. Numbers are never wrapped or cut; text wraps (a word longer than its column folds)."""
    cells = [[row[i] for row in rows] for i in range(len(columns))]
    widths = [_column_width(column, cells[i]) for i, column in enumerate(columns)]
    base = 1 + sum(width + 3 for width in widths[:keys])  # the left border, the key columns
    for n, run in enumerate(_split_columns(columns[keys:], widths[keys:], base, console.width)):
        picked = [*range(keys), *(keys + i for i in run)]
        fits = base + sum(widths[keys + i] + 3 for i in run) <= console.width
        table = Table()
        for i in picked:
            column = columns[i]
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                no_wrap=column.numeric and fits,  # a column too wide for the console folds instead
                overflow="fold",
            )
        for row in rows:
            table.add_row(*(row[i] for i in picked))
        console.print(Text(title if n == 0 else f"{title} (continued)", style="table.title"))
        console.print(table)
    if note:
        console.print(Text(note, style="dim"))


def ordered_steps(stats: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The steps in the order they ran (``step_order``; older stats: as stored)."""
    order = stats.get("step_order") or list(stats["steps"])
    return [(name, stats["steps"][name]) for name in order]


def render_stats(stats: dict[str, Any], console: Console, packing: dict[str, Any] | None = None) -> None:
    console.print(
        f"[bold]{stats['job']}[/bold]  fingerprint {stats['fingerprint']}  "
        f"loom {stats['loom_version']}  format v{stats['format_version']}  {stats['seconds']:.1f}s"
    )
    rows = []
    for name, s in ordered_steps(stats):
        kept = 100.0 * s["rows_out"] / s["rows_in"] if s["rows_in"] else 100.0
        kept_cell = f"{kept:.1f}" if kept <= 100.0 else "—"  # a step that makes rows (keys, edges)
        rows.append(
            [
                name,
                str(s["parts"]),
                f"{s['rows_in']:,}",
                f"{s['rows_out']:,}",
                kept_cell,
                f"{sum(s['drops'].values()):,}",
                f"{s['seconds']:.1f}",
                f"{s['wall_seconds']:.1f}",
                f"{s.get('peak_rss_mb', 0):,.0f}",
            ]
        )
    rows_columns = [Column(h, group="rows") for h in ("parts", "rows\nin", "rows\nout", "kept\n%", "dropped")]
    cost_columns = [Column(h, group="cost") for h in ("part\ns", "wall\ns", "peak\nMB")]
    print_table(
        console,
        "Steps",
        [Column("step", numeric=False), *rows_columns, *cost_columns],
        rows,
        note="part s: the seconds of its parts, summed (worker time); wall s: the seconds of this run; "
        "peak MB: the peak memory of a worker that ran one of its parts",
    )

    reasons = []
    for name, s in ordered_steps(stats):
        for kind in ("drops", "skipped"):
            for reason, n in sorted(s[kind].items(), key=lambda kv: -kv[1]):
                reasons.append([name, "dropped" if kind == "drops" else "skipped", reason, f"{n:,}"])
    text_columns = [Column(h, numeric=False) for h in ("step", "kind", "reason")]
    print_table(console, "Drops and skips by reason", [*text_columns, Column("count")], reasons, keys=3)

    if "filters" in stats["steps"]:
        render_filters(stats["steps"]["filters"], console)
    if "images" in stats["steps"]:
        render_images(stats["steps"]["images"], stats["steps"].get("image_table", {}), console)
    if "clip" in stats["steps"]:
        render_clip(stats["steps"], console)
    if "dedup" in stats["steps"]:
        render_dedup(stats["steps"], console)
    if "tokens" in stats["steps"]:
        render_tokens(stats["steps"], console)
    if "train" in stats["steps"]:
        render_mix(stats["steps"], console)
    if packing:
        render_packing(packing, console)
    render_shards(stats["shards"], console)


def render_shards(sh: dict[str, Any], console: Console) -> None:
    """The shards in one row: shards, samples by kind, images, image files, tokens, size."""
    docs = sh["documents"]
    samples = ("shards", "samples", "text", "pair", "inter-\nleaved")
    row = [
        f"{sh['count']:,}",
        f"{sh['samples']:,}",
        f"{docs['text']:,}",
        f"{docs['pair']:,}",
        f"{docs['interleaved']:,}",
        f"{sh['images']:,}",
        f"{sh.get('image_files', 0):,}",
        f"{sh['tokens']:,}",
        _human_bytes(sh["bytes"]),
    ]
    columns = [
        *(Column(h, group="samples") for h in samples),
        *(Column(h, group="images") for h in ("images", "image\nfiles")),
        *(Column(h, group="size") for h in ("tokens", "size")),
    ]
    print_table(console, "Shards", columns, [row], keys=0)


def render_images(step: dict[str, Any], table_step: dict[str, Any], console: Console) -> None:
    """The images in one row: references, URLs asked, fetched, failed; distinct images stored."""
    extra = step.get("extra", {})
    stored = table_step.get("extra", {})
    fetched = ("references", "distinct\nURLs", "ok", "failed", "retryable")
    row = [
        f"{extra.get('image_refs', 0):,}",
        f"{step['rows_in']:,}",
        f"{step['rows_out']:,}",
        f"{sum(step['drops'].values()):,}",
        f"{extra.get('retryable', 0):,}",
        f"{stored.get('distinct_images', 0):,}",
        _human_bytes(stored.get("image_bytes", 0)),
    ]
    columns = [
        *(Column(h, group="fetched") for h in fetched),
        *(Column(h, group="stored") for h in ("distinct\nimages", "stored")),
    ]
    print_table(console, "Images", columns, [row], keys=0)


def filter_rows(step: dict[str, Any]) -> list[dict[str, Any]]:
    """Per filter, in run order: documents in and out, kept % of its input and of the step's input,
    and the drops by rule (a rule's reason names its filter: ``gopher_min_words``, ``url_adult``)."""
    retention = step.get("extra", {}).get("filters", {})
    order = list(dict.fromkeys(step.get("extra", {}).get("order", [])))  # every part lists the order
    total = step["rows_in"]
    rows = []
    for name in sorted(retention, key=lambda n: order.index(n) if n in order else len(order)):
        r = retention[name]
        rows.append(
            {
                "filter": name,
                "in": r["in"],
                "out": r["out"],
                "kept_pct": 100.0 * r["out"] / r["in"] if r["in"] else 100.0,
                "cumulative_pct": 100.0 * r["out"] / total if total else 100.0,
            }
        )
    return rows


def render_filters(step: dict[str, Any], console: Console) -> None:
    """Retention per filter (in run order), then the text blocks removed by rule."""
    rows = [
        [r["filter"], f"{r['in']:,}", f"{r['out']:,}", f"{r['kept_pct']:.1f}", f"{r['cumulative_pct']:.1f}"]
        for r in filter_rows(step)
    ]
    columns = [
        Column("filter", numeric=False),
        *(Column(h, group="documents") for h in ("docs\nin", "docs\nout")),
        *(Column(h, group="kept") for h in ("kept\n%", "of all\n%")),
    ]
    print_table(
        console,
        "Filters",
        columns,
        rows,
        note="kept %: of the documents the filter saw; of all %: of the documents the filters step got",
    )
    extra = step.get("extra", {})
    counts = {**extra.get("blocks", {}), **extra.get("counters", {})}
    if counts:
        print_table(
            console,
            "Filters: blocks removed, edits and counts",
            [Column("rule", numeric=False), Column("count")],
            [[rule, f"{n:,}"] for rule, n in sorted(counts.items(), key=lambda kv: -kv[1])],
        )


def render_dedup(steps: dict[str, Any], console: Console) -> None:
    """Dedup in one row: documents in, removed by each rule, clusters, kept."""
    final = steps["dedup"]
    keys = steps.get("dedup_keys", {}).get("extra", {})
    buckets = steps.get("dedup_buckets", {}).get("extra", {})
    rounds = steps.get("dedup_components", {}).get("extra", {}).get("rounds", 0)
    drops = final["drops"]
    rules = ("exact_url", "exact_text", "exact_images", "minhash")
    kept = 100.0 * final["rows_out"] / final["rows_in"] if final["rows_in"] else 100.0
    row = [
        f"{final['rows_in']:,}",
        f"{keys.get('signed', 0):,}",
        *(f"{drops.get(rule, 0):,}" for rule in rules),
        f"{buckets.get('rejected', 0):,}",
        f"{final.get('extra', {}).get('clusters', 0):,}",
        str(rounds),
        f"{kept:.1f}",
    ]
    columns = [
        *(Column(h, group="in") for h in ("documents", "MinHash\nsigned")),
        *(Column(rule, group="removed") for rule in rules),
        *(Column(h, group="clusters") for h in ("rejected\npairs", "clusters", "rounds", "kept\n%")),
    ]
    print_table(
        console,
        "Dedup",
        columns,
        [row],
        keys=0,
        note="exact_url, exact_text, exact_images, minhash: the documents each rule removed; "
        "rejected pairs: candidate pairs below the similarity threshold; rounds: connected-components rounds",
    )


def render_tokens(steps: dict[str, Any], console: Console) -> None:
    """The tokenizer in one line; tokens by source, kind and language; the documents longer than
    each context length (GPT-4's 8k and 32k)."""
    card = steps.get("tokenizer", {}).get("extra", {}).get("tokenizer", {})
    if card.get("source") == "none":
        console.print("[bold]Tokenizer[/bold]: none (the job kept no text to train one on)")
    elif card:
        how = (
            f"trained on {_human_bytes(card['sample_bytes'])} of text "
            f"({card['sample_documents']:,} documents, seed {card['seed']})"
            if card["source"] == "trained"
            else f"supplied ({card.get('path')})"
        )
        console.print(f"[bold]Tokenizer[/bold]: {card['vocab_size']:,} tokens, {how}")
    counts = steps["tokens"].get("extra", {}).get("tokens", {})
    total = counts.get("total", 0)
    rows = []
    for group in ("source", "kind", "language"):
        for value, n in sorted(counts.get(f"by_{group}", {}).items(), key=lambda kv: -kv[1]):
            rows.append([group, value, f"{n:,}", f"{100.0 * n / total:.1f}" if total else "—"])
    rows.append(["all", "", f"{total:,}", "100.0" if total else "—"])
    by = [Column("by", numeric=False), Column("value", numeric=False)]
    print_table(console, "Tokens", [*by, Column("tokens"), Column("share\n%")], rows, keys=2)
    docs = counts.get("documents", 0)
    rows = [
        [
            f"{int(length):,}",
            f"{row['documents']:,}",
            f"{100.0 * row['documents'] / docs:.2f}" if docs else "—",
            f"{row['tokens']:,}",
            f"{100.0 * row['tokens'] / total:.2f}" if total else "—",
        ]
        for length, row in sorted(counts.get("longer_than", {}).items(), key=lambda kv: int(kv[0]))
    ]
    columns = [
        Column("longer\nthan"),
        *(Column(h, group="documents") for h in ("documents", "% of\ndocuments")),
        *(Column(h, group="tokens") for h in ("their\ntokens", "% of\ntokens")),
    ]
    print_table(console, "Context lengths", columns, rows)


def render_mix(steps: dict[str, Any], console: Console) -> None:
    """The training mixture: per component the share asked for and delivered, its tokens and
    epochs; then the training shards and the nested subsets with their shares."""
    mix = steps.get("mix", {}).get("extra", {}).get("mix", {})
    rows = [
        [
            name,
            f"{100 * c['requested_share']:.2f}",
            f"{100 * c['delivered_share']:.2f}",
            f"{c['tokens']:,}",
            f"{c['documents']:,}",
            f"{c['epochs']:.2f}",
            f"{c['max_epochs']:g}",
            f"{c['holds_tokens']:,}",
        ]
        for name, c in mix.get("components", {}).items()
    ]
    columns = [
        Column("component", numeric=False),
        *(Column(h, group="shares") for h in ("requested\n%", "delivered\n%")),
        *(Column(h, group="taken") for h in ("tokens", "documents")),
        *(Column(h, group="epochs") for h in ("epochs", "max\nepochs", "holds\ntokens")),
    ]
    print_table(
        console,
        f"Mixture (budget {mix.get('budget', 0):,} tokens)",
        columns,
        rows,
    )
    train = steps["train"].get("extra", {})
    console.print(
        f"[bold]Training set[/bold] (train/): {train.get('shards', 0):,} shards, "
        f"{train.get('samples', 0):,} samples ({train.get('repeats', 0):,} repeats), "
        f"{train.get('tokens', 0):,} tokens"
    )
    names = list(mix.get("components", {}))
    rows = [
        [
            f"{s['fraction']:g}",
            f"{s['tokens']:,}",
            f"{s['samples']:,}",
            *(f"{100 * s['shares'].get(n, 0):.2f}" for n in names),
        ]
        for s in train.get("subsets", [])
    ]
    columns = [
        Column("fraction"),
        *(Column(h, group="size") for h in ("tokens", "samples")),
        *(Column(f"{n}\n%", group="shares") for n in names),
    ]
    print_table(console, "Nested subsets (prefixes of train/)", columns, rows)


def render_packing(runs: dict[str, Any], console: Console) -> None:
    """What ``loom pack`` measured: per run, sequences, fill, cut documents and skipped samples."""
    rows = []
    for s in runs.values():
        epochs = f"{s['epochs']} ep" if s["epochs"] else "endless"
        rows.append(
            [
                f"{s['folder']}/ {s['seq_len']} k={s['image_tokens']} {epochs}",
                f"{s['sequences']:,}",
                f"{s['tokens']:,}",
                f"{100 * s['fill']:.2f}",
                f"{s['continued_pieces']:,}",
                f"{sum(s['skipped'].values()):,}",
            ]
        )
    headers = ("seqs", "tokens", "fill\n%", "cut", "skip")
    print_table(
        console,
        "Packing (loom pack)",
        [Column("run", numeric=False), *(Column(h) for h in headers)],
        rows,
        note="run: folder, sequence length, k image tokens, epochs; cut: pieces that continue a cut "
        "document; skip: samples skipped",
    )


def render_clip(steps: dict[str, Any], console: Console) -> None:
    """CLIP in one row: images embedded (decode errors), what clip_filters scored and kept, with the
    model and dimension under it; then the images removed and documents dropped, by rule."""
    clip, filt = steps["clip"], steps.get("clip_filters", {})
    extra = clip.get("extra", {})
    kept = 100.0 * filt["rows_out"] / filt["rows_in"] if filt.get("rows_in") else 100.0
    row = [
        f"{clip['rows_in']:,}",
        f"{clip['rows_out']:,}",
        f"{clip['drops'].get('decode_error', 0):,}",
        f"{filt.get('extra', {}).get('images_scored', 0):,}",
        f"{kept:.1f}",
    ]
    columns = [
        *(Column(h, group="clip") for h in ("distinct\nimages", "embedded", "undecodable")),
        *(Column(h, group="clip_filters") for h in ("images\nscored", "documents\nkept %")),
    ]
    model = ", ".join(extra.get("model", {})) or "—"
    note = f"model {model}, dimension {extra.get('dim', '—')}"
    print_table(console, "CLIP", columns, [row], keys=0, note=note)
    removed = filt.get("extra", {}).get("images_removed", {})
    if removed or filt.get("drops"):
        rows = []
        for rule in sorted(set(removed) | {r.removeprefix("clip_") for r in filt.get("drops", {})}):
            dropped = filt.get("drops", {}).get(f"clip_{rule}", 0)
            rows.append([rule, f"{removed.get(rule, 0):,}", f"{dropped:,}"])
        print_table(
            console,
            "CLIP filters: images removed and documents dropped",
            [Column("rule", numeric=False), Column("images\nremoved"), Column("documents\ndropped")],
            rows,
        )
