"""The report's plots, drawn with Bokeh from the binned data of :mod:`report.collect`.

Bokeh because its whole runtime inlines into one HTML file (~1.3 MB of JavaScript, against ~4.8 MB
for plotly.js), renders on a canvas, and needs no server: the report opens offline. Every plot is
drawn from bins and counts, never from one glyph per document, so a report of a billion documents
is as small and fast as the demo's.
"""

from __future__ import annotations

from typing import Any

from bokeh.models import ColumnDataSource, HoverTool, Label, NumeralTickFormatter, Span
from bokeh.palettes import Category10_10
from bokeh.plotting import figure
from bokeh.transform import dodge

from report.collect import CONTEXTS, Hist, ReportData, ScoreDist

WIDE, NARROW, HEIGHT = 760, 370, 240
#: Steps whose rows are not documents (images, dedup keys and edges, a tokenizer): in the drop table,
#: not in the funnel plot.
AUXILIARY = frozenset(
    {"images", "image_table", "clip", "dedup_keys", "dedup_buckets", "dedup_components", "tokenizer"}
)
KIND_COLORS = {"text": Category10_10[0], "interleaved": Category10_10[1], "pair": Category10_10[2]}


def _color(key: str, i: int) -> str:
    return KIND_COLORS.get(key, Category10_10[(i + 3) % 10])


def _figure(name: str, title: str, width: int = NARROW, **kwargs: Any) -> Any:
    fig = figure(
        name=name,
        title=title,
        width=width,
        height=kwargs.pop("height", HEIGHT),
        toolbar_location=None,
        tools="",
        **kwargs,
    )
    fig.title.text_font_size = "12px"
    fig.outline_line_color = None
    return fig


def _hist(fig: Any, hist: Hist, color: str, legend: str | None = None, alpha: float = 0.6) -> None:
    source = ColumnDataSource({"left": hist.edges[:-1], "right": hist.edges[1:], "count": hist.counts})
    extra = {"legend_label": legend} if legend else {}
    fig.quad(
        source=source, left="left", right="right", bottom=0, top="count",
        fill_color=color, line_color=color, fill_alpha=alpha, line_alpha=0.9, **extra,
    )  # fmt: skip


def _hover(fig: Any, tooltips: list[tuple[str, str]]) -> None:
    fig.add_tools(HoverTool(tooltips=tooltips))


def funnel(data: ReportData) -> Any:
    rows = [s for s in data.steps if s["step"] not in AUXILIARY]
    steps = [s["step"] for s in rows]
    fig = _figure("funnel", "Documents in and out of each step", WIDE, y_range=list(reversed(steps)),
                  height=max(HEIGHT, 26 * len(steps) + 60))  # fmt: skip
    source = ColumnDataSource(
        {
            "step": steps,
            "rows_in": [s["rows_in"] for s in rows],
            "rows_out": [s["rows_out"] for s in rows],
            "dropped": [s["dropped"] for s in rows],
            "skipped": [s["skipped"] for s in rows],
        }
    )
    fig.hbar(y="step", right="rows_in", height=0.8, source=source, color="#c7d3e3", legend_label="in")
    fig.hbar(y="step", right="rows_out", height=0.5, source=source, color="#1f77b4", legend_label="out")
    fig.xaxis.formatter = NumeralTickFormatter(format="0,0")
    fig.legend.location = "bottom_right"
    _hover(fig, [("step", "@step"), ("in", "@rows_in{0,0}"), ("out", "@rows_out{0,0}"),
                 ("dropped", "@dropped{0,0}"), ("skipped", "@skipped{0,0}")])  # fmt: skip
    return fig


def token_lengths(data: ReportData) -> Any:
    fig = _figure("token_lengths", "Tokens per document, by kind (log scale)", WIDE, x_axis_type="log")
    for i, (kind, hist) in enumerate(sorted(data.token_lengths.items())):
        _hist(fig, hist, _color(kind, i), legend=f"{kind} ({hist.total:,})", alpha=0.35)
    for ctx in CONTEXTS:
        fig.add_layout(Span(location=ctx, dimension="height", line_color="#d62728", line_dash="dashed"))
        fig.add_layout(Label(x=ctx, y=5, y_units="screen", text=f" {ctx // 1024}k", text_font_size="11px",
                             text_color="#d62728"))  # fmt: skip
    fig.xaxis.axis_label = "tokens"
    fig.yaxis.axis_label = "documents"
    fig.legend.location = "top_left"
    return fig


def bars(name: str, title: str, counts: dict[str, int], width: int = NARROW, limit: int = 20) -> Any:
    """A bar per key (the ``limit`` largest, the rest summed as "other")."""
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    if len(items) > limit:
        items = items[: limit - 1] + [("other", sum(v for _, v in items[limit - 1 :]))]
    keys = [str(k) for k, _ in items]
    fig = _figure(name, title, width, x_range=keys)
    source = ColumnDataSource({"key": keys, "count": [v for _, v in items]})
    fig.vbar(x="key", top="count", width=0.8, source=source, color=Category10_10[0])
    fig.yaxis.formatter = NumeralTickFormatter(format="0,0")
    fig.xaxis.major_label_orientation = 0.8 if max((len(k) for k in keys), default=0) > 6 else 0
    _hover(fig, [("", "@key"), ("count", "@count{0,0}")])
    return fig


def images_per_doc(data: ReportData) -> Any:
    fig = _figure("images_per_doc", "Images per document, by kind", NARROW)
    width = 0.8 / max(1, len(data.images_per_doc))
    for i, (kind, counts) in enumerate(sorted(data.images_per_doc.items())):
        xs = [int(k) + (i - (len(data.images_per_doc) - 1) / 2) * width for k in counts]
        fig.vbar(x=xs, top=list(counts.values()), width=width, color=_color(kind, i), legend_label=kind)
    fig.xaxis.axis_label = "images"
    fig.yaxis.axis_label = "documents"
    return fig


def image_sides(data: ReportData) -> Any:
    fig = _figure("image_sides", "Image width and height before resizing (log scale)", NARROW,
                  x_axis_type="log")  # fmt: skip
    for i, (side, hist) in enumerate(data.image_sides.items()):
        _hist(fig, hist, Category10_10[i + 4], legend=side, alpha=0.4)
    fig.xaxis.axis_label = "pixels"
    return fig


def score(dist: ScoreDist, index: int) -> Any:
    removed = "; ".join(
        f"{t['label']} removes {t['removed']:,} ({100 * t['share']:.1f} %)" for t in dist.thresholds
    )
    title = f"{dist.score} — {dist.filter}, {dist.measured:,} of {dist.reached:,} scored"
    fig = _figure(f"score_{index}", title, NARROW)
    _hist(fig, dist.hist, Category10_10[0])
    lo, hi = dist.hist.edges[0], dist.hist.edges[-1]
    for t in dist.thresholds:
        if not lo <= t["value"] <= hi:  # far outside the data: named in the label, not drawn
            continue
        fig.add_layout(Span(location=t["value"], dimension="height", line_color="#d62728", line_width=2))
    if removed:
        fig.add_layout(Label(x=5, y=HEIGHT - 62, x_units="screen", y_units="screen", text=removed,
                             text_font_size="10px", text_color="#d62728"))  # fmt: skip
    _hover(fig, [("from", "@left{0.000}"), ("to", "@right{0.000}"), ("documents", "@count{0,0}")])
    return fig


def dedup_clusters(data: ReportData) -> Any:
    sizes = data.dedup_clusters
    fig = _figure("dedup_clusters", "Near-duplicate clusters by size (documents in a cluster)", NARROW,
                  y_axis_type="log")  # fmt: skip
    fig.vbar(
        x=[int(k) for k in sizes], top=list(sizes.values()), width=0.8, bottom=0.5, color=Category10_10[3]
    )
    fig.xaxis.axis_label = "cluster size"
    fig.yaxis.axis_label = "clusters"
    return fig


def mixture(data: ReportData) -> Any:
    components = data.mixture.get("components", {})
    keys = sorted(components)
    fig = _figure("mixture", "Token shares: requested and delivered", NARROW, x_range=keys)
    source = ColumnDataSource(
        {
            "key": keys,
            "requested": [components[k].get("requested_share", 0.0) for k in keys],
            "delivered": [components[k].get("delivered_share", 0.0) for k in keys],
            "epochs": [components[k].get("epochs", 0.0) for k in keys],
        }
    )
    for offset, column, color in ((-0.17, "requested", "#c7d3e3"), (0.17, "delivered", Category10_10[0])):
        fig.vbar(x=dodge("key", offset, range=fig.x_range), top=column, width=0.3, source=source,
                 color=color, legend_label=column)  # fmt: skip
    fig.yaxis.formatter = NumeralTickFormatter(format="0%")
    _hover(fig, [("", "@key"), ("requested", "@requested{0.0%}"), ("delivered", "@delivered{0.0%}"),
                 ("epochs", "@epochs{0.00}")])  # fmt: skip
    return fig
