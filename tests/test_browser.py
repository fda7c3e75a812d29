"""The apps as a user meets them: a real Voila server driven by a real headless chromium.

The session starts ``voila notebooks/`` the way ``make app`` serves the tree
of apps (same flags, the project's Jupyter/IPython/matplotlib state under
``.state/``), opens the tree page, uses the overview app and renders every
notebook. Voila executes a notebook when its page is opened, so each render
runs the notebook in a fresh kernel. Screenshots land in
``.state/screenshots/`` for a human look.

Needs Debian's ``/usr/bin/chromium`` (``make test`` installs it); the browser
never reaches the network: every request not to the local server is aborted.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# A hung server or page fails the test instead of the whole run (setup of the
# session fixtures counts towards the first test that uses them).
pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".state"
SCREENSHOTS = STATE / "screenshots"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
RENDER_TIMEOUT_MS = 120_000  # Voila executes the notebook before the page is complete

# What a broken page shows: Voila's failed-cell notice, a widget the browser could
# not draw, a traceback, an exception name, or a salesplan app's error area.
BROKEN = re.compile(
    r"Traceback|There was an error when executing cell|Error displaying widget|"
    r"\b\w*(?:Error|Exception)\b(?::|\s+Traceback)|Unexpected error"
)


def _state_env() -> dict[str, str]:
    """The environment `make app` exports: Jupyter, IPython and matplotlib state inside .state/."""
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(STATE / "jupyter" / "config"),
        JUPYTER_DATA_DIR=str(STATE / "jupyter" / "data"),
        JUPYTER_RUNTIME_DIR=str(STATE / "jupyter" / "runtime"),
        IPYTHONDIR=str(STATE / "ipython"),
        MPLCONFIGDIR=str(STATE / "matplotlib"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONHASHSEED="0",
    )
    return env


def _voila_executable() -> Path:
    for candidate in (Path(sys.prefix) / "bin" / "voila", ROOT / ".venv" / "bin" / "voila"):
        if candidate.exists():
            return candidate
    pytest.fail(f"voila is not installed in {sys.prefix} nor in {ROOT / '.venv'}; run `make test` (it installs it).")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _start_voila(log_name: str, env_extra: dict[str, str] | None = None):
    """A Voila server on the tree of apps, started as `make app` does: (process, url)."""
    STATE.mkdir(exist_ok=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = STATE / log_name
    cmd = [
        str(_voila_executable()), "notebooks/", "--no-browser", "--Voila.ip=127.0.0.1",
        f"--port={port}", "--show_tracebacks=False",
    ]
    with open(log_path, "w") as log:
        # Own process group, so that stopping it also stops the kernels it started.
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**_state_env(), **(env_extra or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 90
    while not _answers(url + "/"):
        if proc.poll() is not None:
            pytest.fail(f"voila exited with code {proc.returncode} before answering; "
                        f"its log ({log_path}):\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"voila did not answer at {url} within 90 s; log ({log_path}):\n"
                        f"{log_path.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc, url


def _stop(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def voila_url():
    """A Voila server on the tree of apps and the demo data; stopped after the session."""
    proc, url = _start_voila("voila-browser-tests.log")
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture
def page(browser, voila_url):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    # The page template links a CDN font; nothing may leave the machine.
    context.route(lambda url: not url.startswith(voila_url), lambda route: route.abort())
    tab = context.new_page()
    tab.set_default_timeout(RENDER_TIMEOUT_MS)
    yield tab
    context.close()  # closing the page lets Voila shut the notebook's kernel down


def _render(page, url: str, name: str) -> None:
    """Open a notebook through Voila and wait until its cells are shown."""
    page.goto(f"{url}/voila/render/{name}", wait_until="load", timeout=RENDER_TIMEOUT_MS)
    _wait_rendered(page)


def _wait_rendered(page) -> None:
    page.wait_for_load_state("load", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_selector("#loading", state="detached", timeout=RENDER_TIMEOUT_MS)
    page.wait_for_selector("#rendered_cells", state="visible", timeout=RENDER_TIMEOUT_MS)


def _settled_text(page, *, quiet_s: float = 2.0, limit_s: float = 60.0) -> str:
    """The page text once it stopped changing (widgets are drawn after the cells arrive)."""
    text, since, deadline = page.inner_text("body"), time.monotonic(), time.monotonic() + limit_s
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = page.inner_text("body")
        if now != text:
            text, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return text


def _screenshot_page(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Voila scrolls inside the page, so grow the viewport to the content for a full picture.
    height = page.evaluate("() => document.getElementById('rendered_cells')?.scrollHeight ?? 1000")
    page.set_viewport_size({"width": 1280, "height": int(min(max(height + 80, 800), 8000))})
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    # The first screen alone, as a visitor first sees the page (the README shows these).
    page.screenshot(path=str(SCREENSHOTS / f"{name}-top.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 900})
    return path


def _assert_not_broken(text: str, where: str) -> None:
    hit = BROKEN.search(text)
    if hit:
        start = max(hit.start() - 300, 0)
        pytest.fail(f"{where} shows an error ({hit.group(0)!r}):\n...{text[start:hit.end() + 300]}...")


def _open_tree(page, url: str):
    page.goto(url + "/", wait_until="load")
    page.locator("li.jp-DirListing-item").first.wait_for(state="visible", timeout=60_000)


def _tree_item(page, name: str):
    return page.locator("li.jp-DirListing-item").filter(has=page.get_by_text(name, exact=True))


def test_tree_lists_every_app(page, voila_url):
    _open_tree(page, voila_url)
    for nb in NOTEBOOKS:
        assert _tree_item(page, nb.name).count() == 1, f"{nb.name} is not listed on the tree page"
    _screenshot_page(page, "tree")


def test_overview_app_in_the_browser(page, voila_url):
    from salesplan.datasets import load_demo
    from salesplan.summary import filter_transactions, kpis
    from salesplan.ui.overview import find_apps, format_value

    tables = load_demo()
    tx = tables["transactions"]
    as_of = tx["order_date"].max()

    # As a user does: open the tree of apps, double-click the overview (it opens in a new tab).
    _open_tree(page, voila_url)
    with page.context.expect_page(timeout=30_000) as opened:
        _tree_item(page, "00_overview.ipynb").dblclick()
    page = opened.value
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    assert page.url.startswith(f"{voila_url}/voila/render/00_overview.ipynb")
    _wait_rendered(page)
    page.wait_for_selector('.salesplan-kpi[data-kpi="revenue_12m"]', timeout=60_000)

    # The data summary: every table with its row count as the app formats it.
    for name, frame in tables.items():
        cell = page.locator(f'tr[data-table="{name}"] td.rows')
        assert cell.inner_text().strip() == format_value(len(frame), "count"), name
    # The KPIs of all regions and channels.
    revenue = page.locator('.salesplan-kpi[data-kpi="revenue_12m"] .kpi-value')
    expected = kpis(tx, as_of=as_of).set_index("kpi")["value"]
    assert revenue.inner_text().strip() == format_value(expected["revenue_12m"], "money")
    customers = page.locator('.salesplan-kpi[data-kpi="customers"] .kpi-value')
    assert customers.inner_text().strip() == format_value(expected["customers"], "count")
    # The chart is drawn by plotly in the page.
    page.wait_for_selector(".js-plotly-plot .gtitle", timeout=60_000)
    assert "all regions, all channels" in page.locator(".js-plotly-plot .gtitle").text_content()

    # Choose a region: KPIs and chart follow.
    region = sorted(tx["region"].dropna().unique())[0]
    page.locator(".widget-dropdown", has_text="Region").locator("select").select_option(region)
    want = kpis(filter_transactions(tx, region=region), as_of=as_of).set_index("kpi")["value"]
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel)?.innerText.trim() === text",
        arg=['.salesplan-kpi[data-kpi="revenue_12m"] .kpi-value', format_value(want["revenue_12m"], "money")],
        timeout=30_000,
    )
    page.wait_for_function(
        "(region) => document.querySelector('.js-plotly-plot .gtitle')?.textContent.includes(region)",
        arg=region, timeout=30_000,
    )
    assert want["revenue_12m"] < expected["revenue_12m"]

    # Links to the other apps resolve to Voila's render pages.
    for app in find_apps(ROOT / "notebooks").itertuples():
        href = page.locator(f'a[href="{app.href}"]').first.evaluate("a => a.href")
        assert href == f"{voila_url}/voila/render/{app.notebook}"

    text = _settled_text(page)
    path = _screenshot(page, "overview")
    _assert_not_broken(text, "the overview app")
    assert page.locator(".salesplan-error").count() == 0, text[:2000]
    assert path.stat().st_size > 10_000

    # A click on a link really navigates there (the page does not swallow it).
    apps = find_apps(ROOT / "notebooks")
    if len(apps):
        first = apps.iloc[0]
        with page.expect_navigation(url=f"{voila_url}/voila/render/{first.notebook}", wait_until="commit",
                                    timeout=30_000):
            page.locator(f'a[href="{first.href}"]').first.click()


#: The stylesheets plain Voila's page template asks a CDN for. `salesplan serve` uses its own template
#: without them (test_serve checks that every page loads with nothing leaving the machine).
TEMPLATE_FONTS = "https://cdn.jsdelivr.net/npm/@fortawesome/"


def _money_cells(table, column: int) -> list[float]:
    texts = table.locator(f"tbody tr td:nth-child({column + 1})").all_inner_texts()
    return [float(t.replace(",", "")) for t in texts]


def _eventually(read, ok, *, limit_s: float = 30.0):
    """``read()`` once ``ok`` holds for it (the page redraws after a click), else its last value."""
    deadline = time.monotonic() + limit_s
    value = read()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def test_planner_table_sorts_filters_downloads_and_its_chart_is_live(browser, voila_url, tmp_path):
    """The planner page as a manager uses it: sort and search the units, download them, move growth."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    outside: list[str] = []
    context.route(lambda url: not url.startswith("http://127.0.0.1:"),
                  lambda route: (outside.append(route.request.url), route.abort()))
    page = context.new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    try:
        _render(page, voila_url, "03_target_setting.ipynb")
        view = page.locator(".salesplan-table-view", has=page.locator("table.dataTable"))
        table = view.locator("table.dataTable").first
        table.locator("tbody tr").first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)
        headers = table.locator("thead th").all_inner_texts()
        quota_col = [h.strip() for h in headers].index("quota")
        unit_col = 0

        # Sortable: a click on the header orders the rows by the numbers, not by their text.
        before = _money_cells(table, quota_col)
        assert before != sorted(before), "the demo units are not already in quota order"
        table.locator("thead th").nth(quota_col).click()
        ascending = _eventually(lambda: _money_cells(table, quota_col), lambda v: v == sorted(v))
        assert ascending == sorted(ascending) and ascending != before
        table.locator("thead th").nth(quota_col).click()
        descending = _eventually(lambda: _money_cells(table, quota_col), lambda v: v == sorted(v, reverse=True))
        assert descending == sorted(descending, reverse=True)

        # Filterable: the search box keeps the rows that match.
        units = table.locator(f"tbody tr td:nth-child({unit_col + 1})").all_inner_texts()
        search = view.locator("input[type=search]")
        assert search.count() == 1
        search.fill(units[0])
        kept = _eventually(lambda: table.locator(f"tbody tr td:nth-child({unit_col + 1})").all_inner_texts(),
                           lambda v: len(v) < len(units))
        assert kept and all(units[0] in u for u in kept)
        search.fill("")

        # Downloadable: the CSV holds every unit's raw quota, which the page shows formatted.
        shown = dict(zip(table.locator(f"tbody tr td:nth-child({unit_col + 1})").all_inner_texts(),
                         table.locator(f"tbody tr td:nth-child({quota_col + 1})").all_inner_texts()))
        with page.expect_download(timeout=60_000) as csv_download:
            view.locator("button.salesplan-download", has_text="CSV").click()
        assert csv_download.value.suggested_filename.startswith("allocation_")
        path = tmp_path / csv_download.value.suggested_filename
        csv_download.value.save_as(path)
        import pandas as pd

        from salesplan.format import money

        rows = pd.read_csv(path, encoding="utf-8-sig")
        level = rows.columns[0]
        for unit, text in shown.items():
            assert money(rows.loc[rows[level].astype(str) == unit, "quota"].iloc[0]) == text, unit
        with page.expect_download(timeout=60_000) as xlsx_download:
            view.locator("button.salesplan-download", has_text="Excel").click()
        assert xlsx_download.value.suggested_filename.endswith(".xlsx")
        xlsx = tmp_path / "units.xlsx"
        xlsx_download.value.save_as(xlsx)
        assert pd.read_excel(xlsx)["quota"].sum() == pytest.approx(rows["quota"].sum())

        # Live chart: a FigureWidget (not a re-rendered output) whose bars follow the growth control.
        plot = page.locator(".js-plotly-plot").first
        plot.wait_for(state="visible", timeout=60_000)
        page.evaluate("() => { window.__quotaPlot = document.querySelector('.js-plotly-plot'); }")
        assert page.evaluate("() => window.__quotaPlot.closest('.widget-output') === null")
        total_before = page.evaluate("() => window.__quotaPlot.data[0].y.reduce((a, b) => a + b, 0)")
        growth = page.locator(".widget-hbox", has=page.locator(".widget-slider", has_text="Growth")).locator(
            "input[type=number]").first
        growth.fill("0.3")
        growth.press("Enter")
        page.wait_for_function(
            "(before) => Math.abs(window.__quotaPlot.data[0].y.reduce((a, b) => a + b, 0) - before) > 1",
            arg=total_before, timeout=60_000)
        total_after = page.evaluate("() => window.__quotaPlot.data[0].y.reduce((a, b) => a + b, 0)")
        assert total_after > total_before
        # Updated in place: the same plot element, still in the page.
        assert page.evaluate("() => window.__quotaPlot.isConnected && "
                             "window.__quotaPlot === document.querySelector('.js-plotly-plot')")
        text = _settled_text(page)
        _screenshot(page, "planner-tables")
        _assert_not_broken(text, "the planner page")
        assert page.locator(".salesplan-error").count() == 0
    finally:
        context.close()
    leaked = [u for u in outside if not u.startswith(TEMPLATE_FONTS)]
    assert leaked == [], f"the planner page asked other hosts for {leaked}"


def _render_all(browser, voila_url: str, *, prefix: str = "", switch_lang: bool = False) -> dict:
    """Every notebook opened at once, each in its own tab, then read once drawn.

    Voila executes each notebook in its own kernel while streaming the page, so
    opening all tabs before waiting on any lets the kernels run side by side.
    Returns notebook name -> (page text, app errors, failure or None); with
    ``switch_lang``, also ``(name, "zh")`` -> (page text, app errors) after a
    click on the page's 中文 switch (None when the page has no switch).
    """
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.route(lambda url: not url.startswith(voila_url), lambda route: route.abort())
    tabs = {}
    for nb in NOTEBOOKS:
        tab = context.new_page()
        tab.set_default_timeout(RENDER_TIMEOUT_MS)
        # "commit": return as soon as Voila starts answering; the page keeps loading.
        tab.goto(f"{voila_url}/voila/render/{nb.name}", wait_until="commit", timeout=RENDER_TIMEOUT_MS)
        tabs[nb.name] = tab
    results = {}
    for name, tab in tabs.items():
        try:
            _wait_rendered(tab)
            text = _settled_text(tab)
            _screenshot(tab, prefix + Path(name).stem)
            app_errors = tab.locator(".salesplan-error").all_inner_texts()
            results[name] = (text, app_errors, None)
            if switch_lang:
                switch = tab.locator("button.widget-toggle-button", has_text="中文")
                results[(name, "zh")] = None
                if switch.count():
                    switch.first.click()
                    zh_text = _settled_text(tab, quiet_s=1.0)
                    # The Chinese page's first screen only (the full page is the English one's twin).
                    tab.screenshot(path=str(SCREENSHOTS / f"{prefix}{Path(name).stem}-zh-top.png"),
                                   clip={"x": 0, "y": 0, "width": 1280, "height": 900})
                    results[(name, "zh")] = (zh_text, tab.locator(".salesplan-error").all_inner_texts())
        except Exception as exc:  # noqa: BLE001 - reported by that notebook's test
            results[name] = ("", [], f"{type(exc).__name__}: {exc}")
        finally:
            tab.close()
    context.close()
    return results


@pytest.fixture(scope="session")
def rendered(browser, voila_url):
    """Every notebook rendered on the demo data, then switched to Chinese (see :func:`_render_all`)."""
    return _render_all(browser, voila_url, switch_lang=True)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_renders_without_error(rendered, notebook):
    text, app_errors, failure = rendered[notebook.name]
    assert failure is None, f"notebooks/{notebook.name} did not render in Voila: {failure}"
    _assert_not_broken(text, f"notebooks/{notebook.name} rendered by Voila")
    assert not app_errors, f"notebooks/{notebook.name} shows an app error: {app_errors}"
    assert text.strip(), f"notebooks/{notebook.name} rendered an empty page"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_app_switches_to_chinese(rendered, notebook):
    """A click on the page's 中文 switch re-labels the page in Chinese, with no error."""
    assert (notebook.name, "zh") in rendered, f"notebooks/{notebook.name} did not render, so it was not switched"
    switched = rendered[(notebook.name, "zh")]
    assert switched is not None, f"notebooks/{notebook.name} has no English | 中文 switch"
    text, app_errors = switched
    _assert_not_broken(text, f"notebooks/{notebook.name} in Chinese")
    assert not app_errors, f"notebooks/{notebook.name} in Chinese shows an app error: {app_errors}"
    english_text = rendered[notebook.name][0]
    cjk = re.compile(r"[\u4e00-\u9fff]")
    assert len(cjk.findall(text)) > len(cjk.findall(english_text)) + 20, (
        f"notebooks/{notebook.name}: the page did not turn Chinese after the switch")


#: The export shape every app is also opened on in the browser, beside the demo: Parquet, a fifth of the
#: lines without a customer, returns (every shape runs without a browser in test_notebook_shapes).
BROWSER_SHAPES = ["b2c_guests"]


@pytest.fixture(scope="module", params=BROWSER_SHAPES)
def rendered_on_shape(request, browser, shape_paths):
    """Every notebook rendered by a Voila server whose data is one export-like shape."""
    proc, url = _start_voila(f"voila-{request.param}.log", {"SALESPLAN_DATA": str(shape_paths[request.param])})
    try:
        yield request.param, _render_all(browser, url, prefix=f"{request.param}-")
    finally:
        _stop(proc)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_renders_on_export_shaped_data(rendered_on_shape, notebook):
    shape, results = rendered_on_shape
    text, app_errors, failure = results[notebook.name]
    where = f"notebooks/{notebook.name} on the {shape!r} data"
    assert failure is None, f"{where} did not render in Voila: {failure}"
    _assert_not_broken(text, where)
    assert not app_errors, f"{where} shows an app error: {app_errors}"
    assert text.strip(), f"{where} rendered an empty page"


def test_broken_pattern_catches_voila_and_python_errors():
    assert BROKEN.search("There was an error when executing cell [3]. Please run Voilà with --show_tracebacks")
    assert BROKEN.search("KeyError: 'region'")
    assert BROKEN.search("Error displaying widget: model not found")
    assert not BROKEN.search("Mean absolute error 3.2; errors shown as text")
