"""The demo's report opened in a real browser (Debian's chromium, headless): no JavaScript error, every
plot rendered, the sample documents in the page; a screenshot is saved beside the test's files."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.storage import Storage
from report import REPORT, build_report

#: Added to a copy of the page: records uncaught errors, then (once the page has loaded and Bokeh has
#: drawn) writes them and the number of Bokeh views into <pre id="probe"> for --dump-dom to show.
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message)));
window.addEventListener("unhandledrejection", e => window.__errors.push("rejection: " + String(e.reason)));
window.addEventListener("load", () => setTimeout(() => {
  let views = -1;
  try {
    const index = Bokeh.index;
    const all = typeof index.values === "function" ? Array.from(index.values()) : Object.keys(index);
    views = all.length;
  } catch (e) { window.__errors.push("probe: " + e); }
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({errors: window.__errors, views: views});
  document.body.appendChild(out);
}, 2000));
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail(
            "Debian's chromium is not installed: `apt-get install chromium` (.ci/run does)", pytrace=False
        )
    return found


def run_chromium(*args: str) -> str:
    command = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--virtual-time-budget=20000", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def probe(page: Path) -> dict:
    """Open ``page`` with the probe added; what it recorded."""
    probed = page.with_name("probed.html")
    probed.write_text(
        page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8"
    )
    dom = run_chromium("--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">([^<]*)</pre>', dom)
    assert found, "the page never finished loading (no probe output)"
    return json.loads(found.group(1).replace("&quot;", '"')) | {"dom": dom}


@pytest.fixture(scope="module")
def page(demo_result: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser") / "result"
    shutil.copytree(demo_result, root)
    build_report(Storage(str(root)))
    return root / REPORT


def test_the_report_renders_in_chromium_without_errors(page: Path):
    seen = probe(page)
    assert seen["errors"] == []
    plots = len(re.findall(r'<div id="[^"]+" data-root-id="[^"]+"', page.read_text(encoding="utf-8")))
    assert plots >= 30 and seen["views"] >= plots  # every plot has a view: Bokeh drew them all
    assert seen["dom"].count('class="doc sample"') == 12  # the sample documents are in the page


def test_the_probe_sees_a_script_error(tmp_path: Path):
    """The check above can fail: a page that throws is caught."""
    broken = tmp_path / "index.html"
    broken.write_text("<html><head></head><body><script>throw new Error('boom')</script></body></html>")
    assert any("boom" in e for e in probe(broken)["errors"])


def test_a_screenshot_of_the_report(page: Path, tmp_path: Path):
    shot = tmp_path / "report.png"
    run_chromium("--window-size=1280,3000", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 50_000  # a page with plots, not a blank one
