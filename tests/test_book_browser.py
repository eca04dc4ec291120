"""The built book, opened page by page in a real headless browser.

Runs when ``BOOK_HTML_DIR`` names a built book (``_build/html`` of ``make book``); it
FAILS (does not skip) if chromium is then missing (``scripts/setup_browser.sh`` installs
it). Chromium (``$CHROMIUM``, default ``/usr/bin/chromium``) is started headless with a
fresh profile, background networking, component updates, sync and QUIC off, and driven
over the DevTools protocol (a small client on tornado's websocket, which Jupyter already
installs). Every ``.html`` page of the site is loaded from disk, and after its load event:

* every ``<img>`` must decode in the browser (``img.decode()`` succeeds and
  ``naturalWidth > 0``; SVGs only need to decode);
* no rendered cell may show an error: no ``stderr`` / traceback / error output block and
  no "Traceback (most recent call last)" in the page text; no cell output may show a
  Markdown table as raw text (``| a | b |`` over ``|---|---|``: the table was not parsed);
* a page with formulas (``.math``) must have them typeset by MathJax (``mjx-container``
  elements after ``MathJax.startup.promise``); MathJax is served from the site's
  ``_static/mathjax`` (sphinx-mathjax-offline), so this holds without network;
* every link into the site (``file://``) must name an existing file, and an existing
  ``id`` in it when the link has a ``#fragment``;
* every chapter page (``notebooks/*.html``, so new chapters are checked without edits)
  must have at least one figure with an image, a numbered caption ("Fig. N") and a
  label (``id``), and every figure its notebook declares (``mystnb: figure: name:``)
  must be among them; it must link to the method page and have a Colab launch link
  whose path is a notebook of this repository, as must every other page made from a
  notebook (``book/your_model.ipynb``).

The references page must list at least one bibliography entry. A full-page screenshot
of every page (its first 20000 px, at 0.6 scale) goes to ``$BOOK_SCREENSHOTS`` (default
``_build/screenshots/``), the test's artifact.

The checker itself is tested on a small site with a broken image, a dead link, a dead
anchor, a traceback and a caption-less chapter (needs chromium; skipped without it,
unless ``BOOK_HTML_DIR`` is set).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BOOK_HTML_DIR = os.environ.get("BOOK_HTML_DIR")
SCREENSHOTS = Path(os.environ.get("BOOK_SCREENSHOTS", ROOT / "_build" / "screenshots"))
CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-dev-shm-usage", "--disable-extensions", "--disable-default-apps", "--mute-audio",
    "--no-default-browser-check", "--remote-debugging-port=0", "--window-size=1280,900",
]
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static", "_panels_static"}

# evaluated in the page after its load event; returns a JSON string
PAGE_PROBE = r"""
(async () => {
  const imgs = await Promise.all([...document.images].map(async (im) => {
    im.loading = 'eager';
    let decoded = true;
    try { await im.decode(); } catch (e) { decoded = false; }
    const src = im.currentSrc || im.src || '';
    const svg = /\.svg([?#].*)?$/i.test(src) || src.startsWith('data:image/svg');
    return {src: src.slice(0, 300), ok: decoded && (im.naturalWidth > 0 || svg), width: im.naturalWidth};
  }));
  const main = document.querySelector('main') || document.body || document.documentElement;
  // formulas: Sphinx marks them .math; MathJax (served from _static, no CDN) replaces their
  // TeX by mjx-container elements once its startup promise resolves
  const mathCount = main.querySelectorAll('.math').length;
  if (mathCount && window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  const typeset = main.querySelectorAll('mjx-container').length;
  const figs = [...main.querySelectorAll('figure')].map((f) => ({
    id: f.id || '',
    caption: ((f.querySelector('figcaption') || {}).innerText || '').trim().slice(0, 200),
    number: ((f.querySelector('.caption-number') || {}).innerText || '').trim(),
    img: !!f.querySelector('img'),
  }));
  const errs = [...main.querySelectorAll(
      'div.output.stderr, div.output.traceback, div.output.error, .highlight-ipythontb, .output_error')]
    .map((e) => e.className + ': ' + e.innerText.slice(0, 200));
  const text = main.innerText || '';
  // a Markdown table printed by a cell (IPython.display.Markdown) that was not rendered as a table
  const rawTables = [...main.querySelectorAll('.cell_output')].map((o) => o.textContent || '')
    .filter((t) => /^\s*\|.*\|\s*$/m.test(t) && /^\s*\|\s*:?[-\u2013\u2014]+:?\s*\|/m.test(t))
    .map((t) => t.trim().slice(0, 120));
  return JSON.stringify({
    title: document.title, imgs, figs, errs, mathCount, typeset,
    traceback: /Traceback \(most recent call last\)/.test(text), rawTables,
    links: [...document.querySelectorAll('a[href]')].map((a) => a.href),
    citations: document.querySelectorAll('.citation, dl.citation > dt, div.citation').length,
    height: document.documentElement.scrollHeight,
  });
})()
"""


# --------------------------------------------------------------------------------------
# a minimal DevTools-protocol client
# --------------------------------------------------------------------------------------
class Browser:
    """Headless chromium with a fresh profile, driven over the DevTools protocol."""

    def __init__(self, executable: str = CHROMIUM, timeout: float = 60.0) -> None:
        self.executable, self.timeout = executable, timeout
        self.profile = tempfile.mkdtemp(prefix="book-browser-")
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.loop = asyncio.new_event_loop()

    def __enter__(self) -> "Browser":
        self.proc = subprocess.Popen([self.executable, *CHROME_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {self.proc.poll()})")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.ws = self._run(self._connect(f"ws://127.0.0.1:{port}{path}"))
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session=self.session)
        self.send("Emulation.setDeviceMetricsOverride", session=self.session, width=1280, height=900,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.ws is not None:
                self.ws.close()
        finally:
            if self.proc is not None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            self.loop.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def _run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, self.timeout))

    @staticmethod
    async def _connect(url: str):
        from tornado.websocket import websocket_connect

        return await websocket_connect(url, max_message_size=512 * 2**20)

    async def _read(self) -> dict:
        msg = await self.ws.read_message()
        if msg is None:
            raise RuntimeError("DevTools connection closed")
        return json.loads(msg)

    async def _send(self, method: str, params: dict, session: str | None) -> dict:
        mid = next(self.ids)
        msg = {"id": mid, "method": method, "params": params} | ({"sessionId": session} if session else {})
        await self.ws.write_message(json.dumps(msg))
        while True:
            reply = await self._read()
            if reply.get("id") == mid:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def send(self, method: str, session: str | None = None, **params) -> dict:
        return self._run(self._send(method, params, session))

    async def _wait_event(self, method: str) -> dict:
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(await self._read())

    def open(self, url: str) -> dict:
        """Load ``url``, wait for its load event, return the page probe's result."""
        self.events.clear()
        nav = self.send("Page.navigate", session=self.session, url=url)
        if nav.get("errorText"):
            raise RuntimeError(f"cannot open {url}: {nav['errorText']}")
        self._run(self._wait_event("Page.loadEventFired"))
        res = self.send("Runtime.evaluate", session=self.session, expression=PAGE_PROBE, awaitPromise=True,
                        returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page probe failed on {url}: {res['exceptionDetails']}")
        return json.loads(res["result"]["value"])

    def screenshot(self, path: Path, height: int | None = None, scale: float = 0.6) -> None:
        """PNG of the page: the top 900 px, or the first ``height`` px (full page) scaled by ``scale``."""
        params: dict = {"format": "png"}
        if height:
            params |= {"captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 20000), "scale": scale}}
        data = self.send("Page.captureScreenshot", session=self.session, **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


# --------------------------------------------------------------------------------------
# the checks (pure functions of the probe result and the files on disk)
# --------------------------------------------------------------------------------------
_ID_RE = re.compile(r"""\bid\s*=\s*["']([^"']+)["']""")
_REFRESH_RE = re.compile(r"""<meta[^>]+http-equiv=["']refresh["'][^>]+url=([^"'>\s]+)""", re.I)
_COLAB_RE = re.compile(r"^https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/(.+\.ipynb)$")


def declared_figures(notebook: Path) -> list[str]:
    """Figure names declared in a notebook's cell metadata (``mystnb: figure: name:``)."""
    if not notebook.is_file():
        return []
    cells = json.loads(notebook.read_text()).get("cells", [])
    figs = [((c.get("metadata", {}).get("mystnb") or {}).get("figure") or {}) for c in cells]
    return [str(f["name"]) for f in figs if isinstance(f, dict) and f.get("name")]


def _ids(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    if path not in cache:
        cache[path] = set(_ID_RE.findall(path.read_text(errors="replace")))
    return cache[path]


def pages(site: Path) -> list[Path]:
    """Every HTML page of the built site (not the copies under _static, _sources, ...)."""
    return sorted(p for p in site.rglob("*.html") if not SKIP_DIRS & set(p.relative_to(site).parts[:-1]))


def is_chapter(site: Path, page: Path) -> bool:
    return page.relative_to(site).parts[0] == "notebooks"


def page_problems(site: Path, page: Path, probe: dict, id_cache: dict | None = None,
                  repo: Path = ROOT) -> list[str]:
    """Everything wrong with one loaded page; an empty list means it is fine."""
    id_cache = {} if id_cache is None else id_cache
    rel = page.relative_to(site).as_posix()
    problems = [f"{rel}: image did not load: {im['src']}" for im in probe["imgs"] if not im["ok"]]
    problems += [f"{rel}: error output in a rendered cell: {e}" for e in probe["errs"]]
    if probe["traceback"]:
        problems.append(f"{rel}: a Python traceback is shown on the page")
    problems += [f"{rel}: a cell's Markdown table is shown as raw text: {t!r}" for t in probe.get("rawTables", [])]
    if probe.get("mathCount", 0) and not probe.get("typeset", 0):
        problems.append(f"{rel}: {probe['mathCount']} formula(s) shown as raw TeX (MathJax did not load or typeset)")
    for href in sorted(set(probe["links"])):
        parts = urlsplit(href)
        if parts.scheme != "file":
            continue
        target = Path(unquote(parts.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            problems.append(f"{rel}: dead link {href}")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _ids(target, id_cache):
            problems.append(f"{rel}: link to a missing anchor {href}")
    if is_chapter(site, page):
        good = [f for f in probe["figs"] if f["img"] and f["caption"] and re.match(r"Fig\.\s*\d", f["number"]) and f["id"]]
        if not good:
            problems.append(f"{rel}: no figure with an image, a numbered caption and a label "
                            f"(found {len(probe['figs'])} figure(s): {probe['figs'][:3]})")
        # every figure the notebook declares is on the page, with its image and numbered caption
        source = repo / Path(rel).with_suffix(".ipynb")
        problems += [f"{rel}: figure {name!r} (declared in {source.name}) is missing or has no image/numbered caption"
                     for name in declared_figures(source) if name not in {f["id"] for f in good}]
        if not any(urlsplit(h).scheme == "file" and Path(unquote(urlsplit(h).path)).name == "method.html"
                   for h in probe["links"]):
            problems.append(f"{rel}: no link to the method page")
    if is_chapter(site, page) or (repo / Path(rel).with_suffix(".ipynb")).is_file():  # every notebook page
        colab = [m.group(1) for h in probe["links"] if (m := _COLAB_RE.match(h))]
        if not colab:
            problems.append(f"{rel}: no Colab launch link")
        problems += [f"{rel}: Colab link to {p}, which is not a file of this repository"
                     for p in colab if not (repo / p).is_file()]
    if page.name == "references.html" and probe["citations"] < 1:
        problems.append(f"{rel}: the bibliography is empty")
    return problems


def check_site(site: Path, shots: Path | None = SCREENSHOTS, repo: Path = ROOT) -> tuple[list[str], dict]:
    """Open every page of ``site``; return (problems, per-page summary)."""
    site = site.resolve()
    problems: list[str] = []
    summary: dict[str, dict] = {}
    id_cache: dict[Path, set[str]] = {}
    with Browser() as browser:
        for page in pages(site):
            rel = page.relative_to(site).as_posix()
            redirect = _REFRESH_RE.search(page.read_text(errors="replace"))
            if redirect:  # a redirect stub (the root index.html): check its target, do not follow it
                target = urljoin(page.as_uri(), redirect.group(1))
                probe = {"imgs": [], "figs": [], "errs": [], "traceback": False, "rawTables": [], "links": [target],
                         "citations": 0, "height": 0}
                problems += page_problems(site, page, probe, id_cache, repo)
                summary[rel] = {"redirect": target}
                continue
            probe = browser.open(page.as_uri())
            problems += page_problems(site, page, probe, id_cache, repo)
            summary[rel] = {"images": len(probe["imgs"]), "figures": len(probe["figs"]),
                            "links": len(probe["links"]), "height": probe["height"]}
            if shots is not None:
                name = rel.replace("/", "__").removesuffix(".html") + ".png"
                browser.screenshot(shots / name, probe["height"])
    return problems, summary


# --------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------
def _need_chromium() -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        msg = f"chromium not found at {CHROMIUM}: run scripts/setup_browser.sh (or set CHROMIUM)"
        if BOOK_HTML_DIR:
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.mark.skipif(not BOOK_HTML_DIR, reason="set BOOK_HTML_DIR to a built book (_build/html) to run")
def test_built_book_in_a_browser():
    _need_chromium()
    site = Path(BOOK_HTML_DIR)
    assert (site / "index.html").is_file(), f"{site} is not a built book (no index.html)"
    assert any(is_chapter(site.resolve(), p) for p in pages(site.resolve())), "no chapter pages (notebooks/*.html)"
    t0 = time.perf_counter()
    problems, summary = check_site(site)
    print(f"{len(summary)} pages in {time.perf_counter() - t0:.1f} s; screenshots in {SCREENSHOTS}")
    for rel, s in summary.items():
        print(f"  {rel}: {s}")
    assert not problems, "\n".join(problems)


def _write(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!doctype html><html><head><title>t</title></head><body><main>{body}</main></body></html>")


def test_checker_finds_each_kind_of_defect(tmp_path):
    """A small site with one defect of each kind: the checker must report every one, and nothing on the good page."""
    _need_chromium()
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    site, repo = tmp_path / "html", tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "notebooks" / "good.ipynb").write_text("{}")
    fig_cell = {"cell_type": "code", "metadata": {"mystnb": {"figure": {"name": "fig-gone"}}}, "source": ""}
    (repo / "notebooks" / "bad.ipynb").write_text(json.dumps({"cells": [fig_cell]}))
    (site / "_images").mkdir(parents=True)
    plt.figure(figsize=(1, 1)).savefig(site / "_images" / "ok.png")
    (site / "_images" / "broken.png").write_bytes(b"not a png")
    colab = "https://colab.research.google.com/github/o/r/blob/main/notebooks/{}.ipynb"
    _write(site / "book" / "method.html", '<h1 id="method-gramians">Method</h1>')
    good_fig = ('<figure id="fig-a"><img src="../_images/ok.png"><figcaption><span class="caption-number">Fig. 1 '
                '</span>A caption.</figcaption></figure>')
    _write(site / "notebooks" / "good.html",
           f'{good_fig}<a href="../book/method.html#method-gramians">m</a><a href="{colab.format("good")}">c</a>')
    _write(site / "notebooks" / "bad.html",
           '<figure><img src="../_images/broken.png"><figcaption>no number</figcaption></figure>'
           '<img src="../_images/missing.png"><a href="../book/nowhere.html">x</a>'
           '<a href="../index.html#no-such-anchor">y</a><a href="' + colab.format("gone") + '">c</a>'
           '<div class="cell_output"><div class="output traceback highlight-ipythontb"><pre>'
           'Traceback (most recent call last):\nAssertionError</pre></div>'
           '<div class="output stderr"><pre>warning</pre></div></div>'
           '<div class="cell_output"><p>| a | b |\n|—|—|\n| 1 | 2 |</p></div>'
           '<span class="math notranslate nohighlight">\\(x^2\\)</span>')
    _write(site / "index.html", '<a href="notebooks/good.html">g</a>')
    problems, summary = check_site(site, shots=tmp_path / "shots", repo=repo)
    text = "\n".join(problems)
    assert set(summary) == {"index.html", "book/method.html", "notebooks/good.html", "notebooks/bad.html"}
    assert not [p for p in problems if not p.startswith("notebooks/bad.html")], text
    for needle in ["image did not load: file://" + str(site / "_images" / "broken.png"),
                   "image did not load: file://" + str(site / "_images" / "missing.png"),
                   "dead link file://" + str(site / "book" / "nowhere.html"),
                   "missing anchor file://" + str(site / "index.html") + "#no-such-anchor",
                   "a Python traceback is shown", "error output in a rendered cell: output traceback",
                   "error output in a rendered cell: output stderr", "no figure with an image, a numbered caption",
                   "no link to the method page", "notebooks/gone.ipynb, which is not a file of this repository",
                   "figure 'fig-gone' (declared in bad.ipynb) is missing", "Markdown table is shown as raw text",
                   "1 formula(s) shown as raw TeX"]:
        assert needle in text, f"not reported: {needle}\n{text}"
    assert (tmp_path / "shots" / "notebooks__good.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
