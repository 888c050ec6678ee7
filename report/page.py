"""The report page: one self-contained HTML file (Bokeh's JavaScript and every image inlined)."""

from __future__ import annotations

from typing import Any

from bokeh.embed import file_html
from bokeh.resources import INLINE
from jinja2 import Template

from report import plots
from report.collect import ReportData
from report.samples import SampleDoc

TEMPLATE = Template(
    r"""{% from macros import embed %}
{%- macro grid(names) %}<div class="grid">
 {%- for name in names %}{{ embed(roots[name]) }}{% endfor %}</div>{% endmacro %}
{%- macro plots(id, title, names, note="") %}<section id="{{ id }}">
 <h2>{{ title }}</h2>
 {% if note %}<p class="note">{{ note }}</p>
 {% endif %}{{ grid(names) }}
</section>{% endmacro -%}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title|e }}</title>
<style>
 body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; }
 header { background: #1f3b5a; color: #fff; padding: 14px 24px; }
 header h1 { margin: 0 0 4px; font-size: 20px; }
 header .meta { font-size: 12px; opacity: .85; }
 nav { padding: 6px 24px; background: #eef2f7; font-size: 13px; position: sticky; top: 0; z-index: 5; }
 nav a { margin-right: 14px; color: #1f3b5a; }
 main { padding: 8px 24px 40px; max-width: 1200px; }
 section { margin-top: 22px; }
 h2 { font-size: 17px; border-bottom: 1px solid #ccd; padding-bottom: 3px; }
 .cards { display: flex; flex-wrap: wrap; gap: 10px; }
 .card { background: #f5f7fa; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
 .card b { display: block; font-size: 18px; }
 .grid { display: flex; flex-wrap: wrap; gap: 12px; }
 table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
 th, td { border-bottom: 1px solid #e3e6ea; padding: 3px 8px; text-align: left; vertical-align: top; }
 td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
 .doc { border: 1px solid #d7dce2; border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
 .doc .head { font-size: 12px; color: #555; margin-bottom: 6px; word-break: break-all; }
 .doc .text { white-space: pre-wrap; margin: 6px 0; }
 .doc figure { margin: 8px 0; }
 .doc figcaption { font-size: 11px; color: #666; word-break: break-all; }
 .more { color: #888; font-size: 12px; }
 .note { color: #666; font-size: 12px; }
 .missing li { color: #8a5a00; }
 code { font-size: 12px; }
</style>
{{ bokeh_css }}
{{ bokeh_js }}
</head>
<body>
<header>
 <h1>{{ title|e }}</h1>
 <div class="meta">{{ root|e }} · fingerprint {{ stats.fingerprint|e }} · Loom {{ stats.loom_version|e }}
  · format v{{ stats.format_version }} · {{ "%.1f"|format(stats.seconds) }} s</div>
</header>
<nav>{% for id, name in nav %}<a href="#{{ id }}">{{ name }}</a>{% endfor %}</nav>
<main>
<section id="summary">
 <h2>Summary</h2>
 <div class="cards">
  {% for label, value in cards %}<div class="card"><b>{{ value }}</b>{{ label|e }}</div>{% endfor %}
 </div>
</section>

<section id="funnel">
 <h2>Funnel: what each step kept and removed</h2>
 {{ embed(roots.funnel) }}
 <table id="drops"><tr><th>step</th><th>kind</th><th>reason</th><th class="n">documents</th>
  <th>by source · kind</th><th></th></tr>
 {% for d in drops %}<tr><td>{{ d.step|e }}</td><td>{{ d.kind }}</td><td>{{ d.reason|e }}</td>
  <td class="n">{{ "{:,}".format(d.count) }}</td>
  <td class="note">{% for where, n in d.by %}{{ where|e }} {{ "{:,}".format(n) }}
   {%- if not loop.last %}; {% endif %}{% endfor %}</td>
  <td>{% if d.anchor %}<a href="#{{ d.anchor }}">examples</a>{% endif %}</td></tr>{% endfor %}
 </table>
</section>

{% if has.tokens %}<section id="tokens">
 <h2>Tokens</h2>
 {{ embed(roots.token_lengths) }}
 <p class="note">{% for ctx, v in longer_than %}Longer than {{ ctx }} tokens: {{ "{:,}".format(v.documents) }}
  documents ({{ "{:,}".format(v.tokens) }} tokens). {% endfor %}</p>
 {{ grid(token_bars) }}
</section>{% endif %}

{% if has.images %}{{ plots("images", "Images", image_plots) }}{% endif %}

{% if score_plots %}{{ plots("scores", "Filter scores", score_plots, "Each score over the documents that
 reached its filter (kept, or removed there or by a later filter); red lines are the job's thresholds,
 with the documents each one removed.") }}{% endif %}

{% if has.dedup %}{{ plots("dedup", "Deduplication", dedup_plots) }}{% endif %}

{% if has.mixture %}<section id="mixture">
 <h2>Training mixture</h2>
 {{ embed(roots.mixture) }}
 {% if subsets %}<table><tr><th class="n">subset</th><th class="n">samples</th><th class="n">tokens</th>
  <th>token shares</th></tr>
 {% for s in subsets %}<tr><td class="n">{{ "%g"|format(s.fraction) }}</td>
  <td class="n">{{ "{:,}".format(s.samples) }}</td>
  <td class="n">{{ "{:,}".format(s.tokens) }}</td>
  <td>{% for k, v in s.shares|dictsort %}{{ k|e }} {{ "%.1f"|format(100 * v) }} % {% endfor %}</td></tr>
 {% endfor %}
 </table>{% endif %}
</section>{% endif %}

<section id="samples">
 <h2>Sample documents</h2>
 <p class="note">{{ samples|length }} kept documents drawn with seed {{ seed }} from the shards, as a reader
  sees them: text blocks and images in reading order.</p>
 {% for doc in samples %}<div class="doc sample">
  <div class="head"><b>{{ doc.kind }}</b> · {{ doc.source|e }} · {{ doc.language or "?" }} ·
   {% if doc.tokens %}{{ "{:,}".format(doc.tokens) }} tokens · {% endif %}
   <a href="{{ doc.url|e }}">{{ doc.url|e }}</a>
   · <code>{{ doc.id }}</code> in <code>{{ doc.shard|e }}</code></div>
  {% if doc.title %}<div><b>{{ doc.title|e }}</b></div>{% endif %}
  {% for b in doc.blocks %}{% if b.image is not none or b.image_note %}<figure>
   {% if b.image %}<img src="{{ b.image }}" alt="">{% endif %}
   <figcaption>{{ b.image_note|e }}</figcaption></figure>
  {% else %}<div class="text">{{ b.text|e }}{% if b.more_chars %}<span class="more"> …
   {{- " {:,} more characters".format(b.more_chars) -}}
   </span>{% endif %}</div>{% endif %}{% endfor %}
 </div>{% endfor %}
</section>

<section id="dropped">
 <h2>Dropped documents, by reason</h2>
 {% for ex in examples %}<h3 id="{{ ex.anchor }}" style="font-size:14px">{{ ex.step|e }} · {{ ex.reason|e }}
  <span class="note">({{ "{:,}".format(ex.count) }} in all)</span></h3>
 <table class="examples">{% for r in ex.rows %}<tr>
  <td><a href="{{ (r.url or '')|e }}">{{ (r.url or r.id or '')|e }}</a></td>
  <td><code>{{ (r.detail or '')|e }}</code></td></tr>{% endfor %}</table>{% endfor %}
</section>

{% if missing %}<section id="missing">
 <h2>Not in this report</h2>
 <ul class="missing">{% for m in missing %}<li>{{ m|e }}</li>{% endfor %}</ul>
</section>{% endif %}
</main>
{{ plot_script }}
</body>
</html>
"""
)


def _anchor(step: str, reason: str) -> str:
    return "drop-" + "".join(c if c.isalnum() else "-" for c in f"{step}-{reason}")


def render(data: ReportData, samples: list[SampleDoc], examples: dict, seed: int) -> str:
    """The page, as one string."""
    models: list[Any] = [plots.funnel(data)]
    has = {
        "tokens": bool(data.token_lengths),
        "dedup": bool(data.dedup_removed or data.dedup_clusters),
        "mixture": bool(data.mixture),
    }
    # Figures drawn in grids, by section; the template finds each by its name.
    token_figs: list[Any] = []
    if has["tokens"]:
        models.append(plots.token_lengths(data))
        token_figs = [
            plots.bars(f"tokens_by_{key}", f"Tokens by {key}", counts)
            for key, counts in data.tokens_by.items()
            if counts
        ]
    image_figs: list[Any] = []
    if data.images_per_doc and any(k for counts in data.images_per_doc.values() for k in counts if int(k)):
        image_figs.append(plots.images_per_doc(data))
    if data.image_sides:
        image_figs.append(plots.image_sides(data))
    if data.fetch_statuses:
        image_figs.append(plots.bars("fetch_statuses", "Image fetches by status", data.fetch_statuses))
    has["images"] = bool(image_figs)
    score_figs = [plots.score(dist, i) for i, dist in enumerate(data.scores)]
    dedup_figs: list[Any] = []
    if data.dedup_clusters:
        dedup_figs.append(plots.dedup_clusters(data))
    if data.dedup_removed:
        dedup_figs.append(plots.bars("dedup_removed", "Documents removed by rule", data.dedup_removed))
    for figs in (token_figs, image_figs, score_figs, dedup_figs):
        models += figs
    token_bars, image_plots, score_plots, dedup_plots = (
        [f.name for f in figs] for figs in (token_figs, image_figs, score_figs, dedup_figs)
    )
    if has["mixture"]:
        models.append(plots.mixture(data))
    example_rows = [
        {"step": step, "reason": reason, "anchor": _anchor(step, reason), **ex}
        for (step, reason), ex in sorted(examples.items())
    ]
    anchors = {(e["step"], e["reason"]) for e in example_rows}
    drops = [
        {
            **d,
            "anchor": _anchor(d["step"], d["reason"]) if (d["step"], d["reason"]) in anchors else None,
            "by": list(examples.get((d["step"], d["reason"]), {}).get("by", {}).items())[:4],
        }
        for d in data.drops
    ]
    totals = data.totals
    cards = [(key, f"{totals.get(key, 0):,}") for key in ("documents", "tokens", "shards", "images")]
    cards += [(kind, f"{n:,}") for kind, n in sorted(totals.get("by_kind", {}).items())]
    nav = [("summary", "Summary"), ("funnel", "Funnel")]
    nav += [(k, k.title()) for k in ("tokens", "images") if has[k]]
    nav += [("scores", "Scores")] if score_plots else []
    nav += [(k, k.title()) for k in ("dedup", "mixture") if has[k]]
    nav += [("samples", "Samples"), ("dropped", "Dropped")] + (
        [("missing", "Missing")] if data.missing else []
    )
    title = f"Loom run report: {data.stats.get('job', '')}"
    return file_html(
        models,
        resources=INLINE,
        title=title,
        template=TEMPLATE,
        template_variables={
            "root": data.root, "stats": data.stats, "nav": nav, "cards": cards, "drops": drops, "has": has,
            "longer_than": sorted(data.longer_than.items(), key=lambda kv: int(kv[0])),
            "token_bars": token_bars, "image_plots": image_plots, "score_plots": score_plots,
            "dedup_plots": dedup_plots, "subsets": data.subsets, "samples": samples, "seed": seed,
            "examples": example_rows, "missing": data.missing,
        },
    )  # fmt: skip
