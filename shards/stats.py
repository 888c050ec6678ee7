"""``loom stats OUT``: the figures of ``stats.json`` and the manifest as readable tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from pipeline.storage import Storage


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


def ordered_steps(stats: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The steps in the order they ran (``step_order``; older stats: as stored)."""
    order = stats.get("step_order") or list(stats["steps"])
    return [(name, stats["steps"][name]) for name in order]


def render_stats(stats: dict[str, Any], console: Console, packing: dict[str, Any] | None = None) -> None:
    console.print(
        f"[bold]{stats['job']}[/bold]  fingerprint {stats['fingerprint']}  "
        f"loom {stats['loom_version']}  format v{stats['format_version']}  {stats['seconds']:.1f}s"
    )
    steps = Table(title="Steps", title_justify="left")
    for col in ("step", "parts", "rows in", "rows out", "kept %", "dropped", "part s", "wall s", "peak MB"):
        steps.add_column(col, justify="left" if col == "step" else "right", no_wrap=col == "step")
    for name, s in ordered_steps(stats):
        kept = 100.0 * s["rows_out"] / s["rows_in"] if s["rows_in"] else 100.0
        kept_cell = f"{kept:.1f}" if kept <= 100.0 else "—"  # a step that makes rows (keys, edges)
        steps.add_row(
            name,
            str(s["parts"]),
            f"{s['rows_in']:,}",
            f"{s['rows_out']:,}",
            kept_cell,
            f"{sum(s['drops'].values()):,}",
            f"{s['seconds']:.1f}",
            f"{s['wall_seconds']:.1f}",
            f"{s.get('peak_rss_mb', 0):,.0f}",
        )
    console.print(steps)

    reasons = Table(title="Drops and skips by reason", title_justify="left")
    for col in ("step", "kind", "reason", "count"):
        reasons.add_column(col, justify="right" if col == "count" else "left", no_wrap=col != "count")
    for name, s in ordered_steps(stats):
        for kind in ("drops", "skipped"):
            for reason, n in sorted(s[kind].items(), key=lambda kv: -kv[1]):
                reasons.add_row(name, "dropped" if kind == "drops" else "skipped", reason, f"{n:,}")
    console.print(reasons)

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

    sh = stats["shards"]
    out = Table(title="Shards", title_justify="left")
    for col in (
        "shards",
        "samples",
        "text",
        "pair",
        "interleaved",
        "images",
        "image files",
        "tokens",
        "size",
    ):
        out.add_column(col, justify="right")
    docs = sh["documents"]
    out.add_row(
        f"{sh['count']:,}",
        f"{sh['samples']:,}",
        f"{docs['text']:,}",
        f"{docs['pair']:,}",
        f"{docs['interleaved']:,}",
        f"{sh['images']:,}",
        f"{sh.get('image_files', 0):,}",
        f"{sh['tokens']:,}",
        _human_bytes(sh["bytes"]),
    )
    console.print(out)


def render_images(step: dict[str, Any], table_step: dict[str, Any], console: Console) -> None:
    """The images in one row: references, URLs asked, fetched, failed; distinct images stored."""
    extra = step.get("extra", {})
    stored = table_step.get("extra", {})
    table = Table(title="Images", title_justify="left")
    for col in ("references", "distinct URLs", "ok", "failed", "retryable", "distinct images", "stored"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{extra.get('image_refs', 0):,}",
        f"{step['rows_in']:,}",
        f"{step['rows_out']:,}",
        f"{sum(step['drops'].values()):,}",
        f"{extra.get('retryable', 0):,}",
        f"{stored.get('distinct_images', 0):,}",
        _human_bytes(stored.get("image_bytes", 0)),
    )
    console.print(table)


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
    table = Table(title="Filters", title_justify="left")
    for col in ("filter", "docs in", "docs out", "kept %", "of all %"):
        table.add_column(col, justify="left" if col == "filter" else "right")
    for r in filter_rows(step):
        table.add_row(
            r["filter"], f"{r['in']:,}", f"{r['out']:,}", f"{r['kept_pct']:.1f}", f"{r['cumulative_pct']:.1f}"
        )
    console.print(table)
    extra = step.get("extra", {})
    counts = {**extra.get("blocks", {}), **extra.get("counters", {})}
    if counts:
        blocks = Table(title="Filters: blocks removed, edits and counts", title_justify="left")
        blocks.add_column("rule")
        blocks.add_column("count", justify="right")
        for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            blocks.add_row(rule, f"{n:,}")
        console.print(blocks)


def render_dedup(steps: dict[str, Any], console: Console) -> None:
    """Dedup in one row: documents in, removed by each rule, clusters, kept."""
    final = steps["dedup"]
    keys = steps.get("dedup_keys", {}).get("extra", {})
    buckets = steps.get("dedup_buckets", {}).get("extra", {})
    rounds = steps.get("dedup_components", {}).get("extra", {}).get("rounds", 0)
    drops = final["drops"]
    table = Table(title="Dedup", title_justify="left")
    columns = ("documents", "MinHash signed", "exact_url", "exact_text", "exact_images", "minhash")
    for col in (*columns, "rejected pairs", "clusters", "rounds", "kept %"):
        table.add_column(col, justify="right")
    kept = 100.0 * final["rows_out"] / final["rows_in"] if final["rows_in"] else 100.0
    table.add_row(
        f"{final['rows_in']:,}",
        f"{keys.get('signed', 0):,}",
        *(f"{drops.get(rule, 0):,}" for rule in columns[2:]),
        f"{buckets.get('rejected', 0):,}",
        f"{final.get('extra', {}).get('clusters', 0):,}",
        str(rounds),
        f"{kept:.1f}",
    )
    console.print(table)


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
    table = Table(title="Tokens", title_justify="left")
    for col in ("by", "value", "tokens", "share %"):
        table.add_column(col, justify="left" if col in ("by", "value") else "right")
    for group in ("source", "kind", "language"):
        for value, n in sorted(counts.get(f"by_{group}", {}).items(), key=lambda kv: -kv[1]):
            table.add_row(group, value, f"{n:,}", f"{100.0 * n / total:.1f}" if total else "—")
    table.add_row("all", "", f"{total:,}", "100.0" if total else "—")
    console.print(table)
    docs = counts.get("documents", 0)
    ctx = Table(title="Context lengths", title_justify="left")
    for col in ("longer than", "documents", "% of documents", "their tokens", "% of tokens"):
        ctx.add_column(col, justify="right")
    for length, row in sorted(counts.get("longer_than", {}).items(), key=lambda kv: int(kv[0])):
        ctx.add_row(
            f"{int(length):,}",
            f"{row['documents']:,}",
            f"{100.0 * row['documents'] / docs:.2f}" if docs else "—",
            f"{row['tokens']:,}",
            f"{100.0 * row['tokens'] / total:.2f}" if total else "—",
        )
    console.print(ctx)


def render_mix(steps: dict[str, Any], console: Console) -> None:
    """The training mixture: per component the share asked for and delivered, its tokens and
    epochs; then the training shards and the nested subsets with their shares."""
    mix = steps.get("mix", {}).get("extra", {}).get("mix", {})
    table = Table(title=f"Mixture (budget {mix.get('budget', 0):,} tokens)", title_justify="left")
    for col in ("component", "requested %", "delivered %", "tokens", "documents", "epochs", "max", "holds"):
        table.add_column(col, justify="left" if col == "component" else "right")
    for name, c in mix.get("components", {}).items():
        table.add_row(
            name,
            f"{100 * c['requested_share']:.2f}",
            f"{100 * c['delivered_share']:.2f}",
            f"{c['tokens']:,}",
            f"{c['documents']:,}",
            f"{c['epochs']:.2f}",
            f"{c['max_epochs']:g}",
            f"{c['holds_tokens']:,}",
        )
    console.print(table)
    train = steps["train"].get("extra", {})
    console.print(
        f"[bold]Training set[/bold] (train/): {train.get('shards', 0):,} shards, "
        f"{train.get('samples', 0):,} samples ({train.get('repeats', 0):,} repeats), "
        f"{train.get('tokens', 0):,} tokens"
    )
    subsets = Table(title="Nested subsets (prefixes of train/)", title_justify="left")
    names = list(mix.get("components", {}))
    for col in ("fraction", "tokens", "samples", *(f"{n} %" for n in names)):
        subsets.add_column(col, justify="right")
    for s in train.get("subsets", []):
        shares = [f"{100 * s['shares'].get(n, 0):.2f}" for n in names]
        subsets.add_row(f"{s['fraction']:g}", f"{s['tokens']:,}", f"{s['samples']:,}", *shares)
    console.print(subsets)


def render_packing(runs: dict[str, Any], console: Console) -> None:
    """What ``loom pack`` measured: per run, sequences, fill, cut documents and skipped samples."""
    table = Table(title="Packing (loom pack)", title_justify="left")
    for col in ("run", "seqs", "tokens", "fill %", "cut", "skip"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for s in runs.values():
        epochs = f"{s['epochs']} ep" if s["epochs"] else "endless"
        table.add_row(
            f"{s['folder']}/ {s['seq_len']} k={s['image_tokens']} {epochs}",
            f"{s['sequences']:,}",
            f"{s['tokens']:,}",
            f"{100 * s['fill']:.2f}",
            f"{s['continued_pieces']:,}",
            f"{sum(s['skipped'].values()):,}",
        )
    console.print(table)


def render_clip(steps: dict[str, Any], console: Console) -> None:
    """CLIP in one table: images embedded (model, dimension, decode errors), then what clip_filters
    scored and removed, by rule."""
    clip, filt = steps["clip"], steps.get("clip_filters", {})
    extra = clip.get("extra", {})
    table = Table(title="CLIP", title_justify="left")
    for col in (
        "model",
        "dim",
        "distinct images",
        "embedded",
        "undecodable",
        "images scored",
        "documents kept %",
    ):
        table.add_column(col, justify="left" if col == "model" else "right")
    kept = 100.0 * filt["rows_out"] / filt["rows_in"] if filt.get("rows_in") else 100.0
    table.add_row(
        ", ".join(extra.get("model", {})) or "—",
        str(extra.get("dim", "—")),
        f"{clip['rows_in']:,}",
        f"{clip['rows_out']:,}",
        f"{clip['drops'].get('decode_error', 0):,}",
        f"{filt.get('extra', {}).get('images_scored', 0):,}",
        f"{kept:.1f}",
    )
    console.print(table)
    removed = filt.get("extra", {}).get("images_removed", {})
    if removed or filt.get("drops"):
        rules = Table(title="CLIP filters: images removed and documents dropped", title_justify="left")
        for col in ("rule", "images removed", "documents dropped"):
            rules.add_column(col, justify="left" if col == "rule" else "right")
        for rule in sorted(set(removed) | {r.removeprefix("clip_") for r in filt.get("drops", {})}):
            dropped = filt.get("drops", {}).get(f"clip_{rule}", 0)
            rules.add_row(rule, f"{removed.get(rule, 0):,}", f"{dropped:,}")
        console.print(rules)
