"""``salesplan serve`` as a team meets it: a real server, Debian's chromium, no internet.

Two servers run side by side for the module:

* ``apps``: the project's notebooks, as ``salesplan serve`` publishes them
  (home page, preheated kernels, offline pages, the security checks);
* ``light``: a folder of two tiny notebooks behind a token, with a pool of 2
  kernels and a short cull timeout (from a ``--config`` file, as a deployment
  would set them), for the load test: 10 sessions at once, then the kernel
  count back to the pool size, and for a failing notebook (no traceback).

Every request the browser makes to another host is held forever (as on a
network that hangs) and recorded, so a page that needs the internet fails.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from salesplan.i18n import LANGUAGES, t
from salesplan.serve import FIGURE_MODULE, WIDGET_MODULES_PATH, ServeError, check_bind, is_local

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".state"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TOKEN = "test-token-3f9a"
POOL = 2
CULL_S = 60
LIGHT_CONFIG = f"""
c.VoilaConfiguration.default_pool_size = {POOL}
c.VoilaKernelManager.kernel_pools_config = {{"default": {{"pool_size": {POOL}}}, "broken.ipynb": {{"pool_size": 0}}}}
c.VoilaKernelManager.fill_delay = 0.2
c.MappingKernelManager.cull_idle_timeout = {CULL_S}
c.MappingKernelManager.cull_interval = 1
"""
APPS_CONFIG = """
c.MappingKernelManager.cull_idle_timeout = 60
c.MappingKernelManager.cull_interval = 5
"""


def _notebook(*sources: str, heading: str) -> dict:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": heading}]
    cells += [{"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None}
              for s in sources]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                         "language_info": {"name": "python"}}}


LIGHT_APP = _notebook(
    "import ipywidgets as w\n# SOURCE-MARKER: sources are stripped from pages\n"
    "n = w.IntText(value=3, description='n')\nsquare = w.HTML(value='square 9', _dom_classes=['square'])\n"
    "n.observe(lambda change: setattr(square, 'value', f'square {change.new ** 2}'), 'value')\n"
    "w.VBox([n, square])",
    heading="# Light app\n\nA slider and its square.",
)
BROKEN_APP = _notebook("raise RuntimeError('SECRET-ERROR-DETAIL')", heading="# Broken app\n\nIt fails.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(STATE / "jupyter" / "config"), JUPYTER_DATA_DIR=str(STATE / "jupyter" / "data"),
        JUPYTER_RUNTIME_DIR=str(STATE / "jupyter" / "runtime"), IPYTHONDIR=str(STATE / "ipython"),
        MPLCONFIGDIR=str(STATE / "matplotlib"), JUPYTER_PLATFORM_DIRS="1", PYTHONHASHSEED="0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    for name in ("SALESPLAN_DATA", "SALESPLAN_TOKEN", "SALESPLAN_LANG"):
        env.pop(name, None)
    env.update(extra)
    return env


class Server:
    """A ``salesplan serve`` process in its own process group."""

    def __init__(self, name: str, args: list[str], *, token: str = "") -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.log = STATE / f"serve-test-{name}.log"
        cmd = [sys.executable, "-m", "salesplan.cli", "serve", "--port", str(self.port), *args]
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def get(self, path: str, *, auth: bool = True, timeout: float = 30) -> tuple[int, str]:
        url = self.url + path
        if auth and self.token:
            url += ("&" if "?" in path else "?") + f"token={self.token}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def health(self) -> dict:
        status, body = self.get("/salesplan/api/health")
        assert status == 200, body
        return json.loads(body)

    def kernel_processes(self) -> int:
        """ipykernel processes started by this server (the ground truth, whatever the server thinks)."""
        import psutil

        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        count = 0
        for child in children:
            try:
                count += any("ipykernel" in part for part in child.cmdline())
            except psutil.Error:
                pass
        return count

    def wait_ready(self, *, limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"salesplan serve exited ({self.proc.returncode}); log:\n{self.log.read_text()[-3000:]}")
            try:
                health = self.health()
                if health["ready"] and all(n >= health["pool_size"].get(nb, 1) for nb, n in health["ready"].items()):
                    return
            except (urllib.error.URLError, OSError, AssertionError):
                pass
            if time.monotonic() > deadline:
                return  # pages still open (on a fresh kernel); the tests say what they need
            time.sleep(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Both servers, started together so that their kernels warm up side by side."""
    STATE.mkdir(exist_ok=True)
    folder = tmp_path_factory.mktemp("light")
    (folder / "app.ipynb").write_text(json.dumps(LIGHT_APP))
    (folder / "broken.ipynb").write_text(json.dumps(BROKEN_APP))
    (folder / "secret.csv").write_text("customer_id,revenue\nA,1\n")
    light_config = folder.parent / "light_config.py"
    light_config.write_text(LIGHT_CONFIG)
    apps_config = folder.parent / "apps_config.py"
    apps_config.write_text(APPS_CONFIG)
    apps = Server("apps", ["--config", str(apps_config)])
    light = Server("light", ["--notebooks", str(folder), "--token", TOKEN, "--config", str(light_config)],
                   token=TOKEN)
    try:
        light.wait_ready(limit_s=90)
        yield {"apps": apps, "light": light}
    finally:
        apps.stop()
        light.stop()


@pytest.fixture(scope="module")
def apps(servers):
    """The apps server once its preheated kernels are ready (they warm up during the light tests)."""
    servers["apps"].wait_ready(limit_s=180)
    return servers["apps"]


def _offline_context(browser, server: Server):
    """A browser context in which every request to another host hangs; returns (context, requests held)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    held: list[str] = []
    context.route(lambda url: not url.startswith(server.url), lambda route: held.append(route.request.url))
    return context, held


# --- safe defaults, without a server -------------------------------------------------------------

def test_is_local():
    assert is_local("127.0.0.1") and is_local("127.0.0.2") and is_local("::1") and is_local("[::1]")
    assert is_local("localhost") and is_local("LOCALHOST")
    assert not is_local("0.0.0.0") and not is_local("") and not is_local("192.168.1.10")
    assert not is_local("example.org") and not is_local("::")


def test_check_bind_refuses_a_public_address_without_a_token():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "secret")
    with pytest.raises(ServeError, match="without a token.*--token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ServeError, match="令牌"):
        check_bind("", "", lang="zh")


def test_serve_on_a_public_address_without_a_token_exits_with_the_message():
    port = _free_port()
    result = subprocess.run([sys.executable, "-m", "salesplan.cli", "serve", "--host", "0.0.0.0", "--port", str(port)],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert t("serve.token_required", "en", host="0.0.0.0") in result.stderr
    with socket.socket() as s:  # nothing was started
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_refuses_missing_data():
    result = subprocess.run([sys.executable, "-m", "salesplan.cli", "serve", "--data", "no/such/folder", "--lang", "zh"],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no/such/folder" in result.stderr and "不存在" in result.stderr


# --- the home page, without a server -----------------------------------------------------------

def test_find_apps_uses_the_catalogue_then_the_notebook_heading(tmp_path):
    from salesplan.serve.landing import find_apps

    (tmp_path / "00_overview.ipynb").write_text(json.dumps(LIGHT_APP))
    (tmp_path / "07 new app.ipynb").write_text(json.dumps(_notebook("1", heading="# Pipeline <review>\n\nWho closes. Then.")))
    (tmp_path / "notes.txt").write_text("not an app")
    apps = find_apps(tmp_path, lang="zh")
    assert list(apps["notebook"]) == ["00_overview.ipynb", "07 new app.ipynb"]
    assert apps.loc[0, "title"] == t("apps.00_overview.title", "zh")
    assert apps.loc[1, "title"] == "Pipeline <review>" and apps.loc[1, "answers"] == "Who closes."
    assert apps.loc[1, "href"] == "voila/render/07%20new%20app.ipynb"


def test_render_landing_escapes_and_says_when_data_is_missing_or_loading(tmp_path):
    import pandas as pd

    from salesplan.serve.landing import render_landing

    apps = pd.DataFrame({"notebook": ["x.ipynb"], "title": ["<script>alert(1)</script>"], "answers": ["a & b"],
                         "href": ["voila/render/x.ipynb"]})
    page = render_landing(apps, None, lang="en", problem="<b>no file</b>")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page and "a &amp; b" in page
    assert "&lt;b&gt;no file&lt;/b&gt;" in page
    assert t("landing.loading", "zh") in render_landing(apps, None, lang="zh")


def test_data_summary_of_a_folder(tmp_path):
    from salesplan.serve.landing import data_summary

    (tmp_path / "transactions.csv").write_text(
        "order_date,customer_id,revenue\n2024-01-05,A,10\n2024-03-01,B,20\n2024-02-10,A,5\n")
    summary = data_summary(tmp_path)
    assert summary["rows"] == 3 and not summary["demo"] and summary["name"] == tmp_path.name
    assert (f"{summary['date_from']:%Y-%m-%d}", f"{summary['date_to']:%Y-%m-%d}") == ("2024-01-05", "2024-03-01")
    assert summary["tables"].set_index("table").loc["transactions", "rows"] == 3


# --- the load test (light server) -----------------------------------------------------------------

def _left(until: float) -> float:
    """Milliseconds left before ``until`` (a ``time.monotonic()`` deadline), at least one second."""
    return max(1.0, until - time.monotonic()) * 1000


def test_ten_sessions_render_and_their_kernels_are_released(servers, browser):
    light = servers["light"]
    # The apps server preheats seven notebooks at start; the ten sessions open once it has, so
    # that they do not share the 2 cores with those kernels (on a busy machine they did not
    # render within minutes).
    servers["apps"].wait_ready(limit_s=300)
    deadline = time.monotonic() + 60
    while light.kernel_processes() != POOL and time.monotonic() < deadline:
        time.sleep(0.5)
    assert light.kernel_processes() == POOL, "the pool did not fill before the test"

    context = browser.new_context()
    context.route(lambda url: not url.startswith(light.url), lambda route: route.abort())
    pages = [context.new_page() for _ in range(10)]
    # Hang guards, not speed limits: ten pages drawing in one chromium on 2 cores shared with
    # the other tests' kernels take minutes on a busy machine; each wait gets what is left.
    until = time.monotonic() + 420
    for page in pages:  # all ten requests are in flight before any is awaited
        page.goto(f"{light.url}/voila/render/app.ipynb?token={TOKEN}", wait_until="commit", timeout=_left(until))
    for page in pages:
        page.locator(".square").wait_for(timeout=_left(until))
        assert page.locator(".square").inner_text() == "square 9"
    kernels = [json.loads(page.locator("#jupyter-config-data").text_content())["kernelId"] for page in pages]
    assert len(set(kernels)) == 10, "two pages share a kernel"

    # Five pages are used (a change reaches the kernel and comes back), then closed
    # as a browser tab closes: their close request shuts their kernel down at once.
    for number, page in enumerate(pages[:5], start=4):
        page.locator(".widget-text input").fill(str(number))
        page.locator(".widget-text input").press("Enter")
        page.wait_for_function(f"() => document.querySelector('.square').innerText === 'square {number ** 2}'",
                               timeout=30_000)
    for page in pages[:5]:
        page.close(run_before_unload=True)
    deadline = time.monotonic() + 8  # well inside the cull timeout: the close request did it
    while any(_kernel_alive(light, k) for k in kernels[:5]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not any(_kernel_alive(light, k) for k in kernels[:5]), "closing a page did not release its kernel"

    # Five vanish without a word (a crashed browser): culled once idle for the cull timeout.
    context.close()
    deadline = time.monotonic() + CULL_S + 15
    while (light.kernel_processes(), light.health()["kernels"]) != (POOL, POOL) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert light.kernel_processes() == POOL, "kernel processes left after every page closed"
    assert light.health()["kernels"] == POOL, "the server still counts kernels of closed pages"
    assert not any(_kernel_alive(light, k) for k in kernels)


def _kernel_alive(server: Server, kernel_id: str) -> bool:
    status, _ = server.get(f"/api/kernels/{kernel_id}")
    return status == 200


def test_token_is_required(servers):
    light = servers["light"]
    assert light.get("/salesplan/api/health", auth=False)[0] == 403
    status, body = light.get("/", auth=False)
    assert status == 200 and "token" in body.lower() and "Light app" not in body  # the login page
    assert light.get("/")[0] == 200


def test_a_failing_notebook_shows_no_traceback_and_no_source(servers):
    light = servers["light"]
    status, page = light.get("/voila/render/broken.ipynb", timeout=120)
    assert status == 200
    assert "There was an error when executing cell" in page
    assert "Traceback" not in page and "SECRET-ERROR-DETAIL" not in page and "RuntimeError" not in page
    status, page = light.get("/voila/render/app.ipynb", timeout=120)
    assert status == 200 and "SOURCE-MARKER" not in page


def test_data_files_next_to_the_notebooks_are_not_served(servers):
    light = servers["light"]
    for path in ("/voila/files/secret.csv", "/voila/files/app.ipynb", "/voila/render/secret.csv",
                 "/voila/tree/secret.csv", "/voila/api/contents/secret.csv"):
        status, body = light.get(path)
        assert status in (403, 404), (path, status)
        assert "customer_id" not in body


# --- the apps (real notebooks) ------------------------------------------------------------------

@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_landing_page_in_each_language_links_every_app(apps, browser, lang):
    from salesplan import format as fmt
    from salesplan.io import load_data

    context, held = _offline_context(browser, apps)
    page = context.new_page()
    page.goto(f"{apps.url}/?lang={lang}", wait_until="load", timeout=60_000)
    assert page.locator("h1").inner_text() == t("landing.title", lang)
    assert page.locator("html").get_attribute("lang").startswith(lang)
    for nb in NOTEBOOKS:
        card = page.locator(f'article.card[data-app="{nb.name}"]')
        assert card.count() == 1, f"no card for {nb.name}"
        assert card.locator("a.open").evaluate("a => a.href") == f"{apps.url}/voila/render/{nb.name}"
        assert card.locator("h3").inner_text() == t(f"apps.{nb.stem}.title", lang)
        assert card.locator("p").inner_text() == t(f"apps.{nb.stem}.answers", lang)
    rows = len(load_data(None)["transactions"])
    assert page.locator('[data-field="rows"]').inner_text() == t("landing.rows", lang, rows=fmt.count(rows))
    assert page.locator('[data-field="company"]').inner_text() == t("landing.demo_company", lang)
    # The switch leads to the other language, and the choice sticks without the query string.
    other = next(code for code in LANGUAGES if code != lang)
    page.locator(f'nav.lang a[data-lang="{other}"]').click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == t("landing.title", other)
    page.goto(f"{apps.url}/", wait_until="load")
    assert page.locator("h1").inner_text() == t("landing.title", other)
    assert held == []
    context.close()


def test_every_app_page_loads_offline(apps, browser):
    context, held = _offline_context(browser, apps)
    pages, modules = {}, {}
    until = time.monotonic() + 480  # a hang guard for all seven apps (see the ten sessions' test)
    for nb in NOTEBOOKS:
        page = context.new_page()
        modules[nb.name] = fetched = []
        page.on("request", lambda r, fetched=fetched: f"/{WIDGET_MODULES_PATH}/" in r.url and fetched.append(r.url))
        page.goto(f"{apps.url}/voila/render/{nb.name}", wait_until="commit", timeout=_left(until))
        pages[nb.name] = page
    for name, page in pages.items():
        page.wait_for_load_state("load", timeout=_left(until))  # fires only if no stylesheet or script hangs
        page.wait_for_selector("#rendered_cells", state="visible", timeout=_left(until))
        page.wait_for_selector(".js-plotly-plot", timeout=_left(until))  # the charts draw, live ones too
        text = page.inner_text("body")
        assert "Traceback" not in text and "There was an error when executing cell" not in text, name
    assert held == [], f"pages asked other hosts for {held}"
    # The live charts' JavaScript comes from this server, at most once per page however many charts it has.
    assert any(modules.values()), "no page imported the live charts' module from the server"
    assert all(len(urls) <= 1 for urls in modules.values()), modules
    for page in pages.values():
        page.close(run_before_unload=True)
    context.close()


def test_live_chart_module_is_plotlys_and_versioned(apps):
    import plotly

    status, body = apps.get(f"/{WIDGET_MODULES_PATH}/{FIGURE_MODULE.format(version=plotly.__version__)}")
    assert status == 200 and "FigureModel" in body and "as default}" in body and len(body) > 1_000_000
    assert apps.get(f"/{WIDGET_MODULES_PATH}/{FIGURE_MODULE.format(version='0.0.1')}")[0] == 404


TRAVERSALS = [
    "/voila/render/../../pyproject.toml",
    "/voila/render/..%2f..%2fpyproject.toml",
    "/voila/render/%2e%2e/%2e%2e/pyproject.toml",
    "/voila/render/..%252f..%252fpyproject.toml",
    "/voila/static/../../../../../../etc/passwd",
    "/voila/static/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/templates/lab/static/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/voila/templates/..%2f..%2f..%2f/static/etc/passwd",
    "/voila/files/..%2fpyproject.toml",
    "/voila/files/%2e%2e/data/demo/transactions.csv",
    "/voila/files/..%5c..%5cpyproject.toml",
    "/voila/labextensions/..%2f..%2f..%2f..%2fpyproject.toml",
    "/voila/api/themes/..%2f..%2f..%2fpyproject.toml",
    "/?path=../pyproject.toml",
    "/voila/render/00_overview.ipynb/../../../pyproject.toml",
    "/salesplan/widgets/plotly-figurewidget-..%2f..%2f..%2fpyproject.toml.js",
    "/salesplan/widgets/../../pyproject.toml",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_is_refused(apps, path):
    # http.client sends the path exactly as written: no client-side clean-up of "..".
    conn = http.client.HTTPConnection("127.0.0.1", apps.port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    assert "[build-system]" not in body and "root:x:0:0" not in body and "customer_id" not in body
    if path.startswith("/?"):
        assert response.status == 200  # the home page, which reads no query path
    else:
        assert response.status in (403, 404), (path, response.status)
    assert "Traceback" not in body


@pytest.mark.parametrize("path", [
    "/tree", "/voila/tree", "/voila/tree/notebooks", "/voila/api/contents", "/voila/api/contents/00_overview.ipynb",
    "/api/contents", "/api/contents/notebooks", "/api/terminals", "/terminals/1", "/api/sessions", "/api/kernels",
    "/lab", "/notebooks/00_overview.ipynb", "/voila/render/no_such.ipynb", "/voila/render/",
    "/voila/files/00_overview.ipynb", "/voila/api/shutdown/../../x",
])
def test_no_file_browser_contents_or_terminals(apps, path):
    status, body = apps.get(path)
    assert status in (403, 404, 405), (path, status)
    assert "Traceback" not in body and '"cells"' not in body


def test_query_string_cannot_pick_another_template(apps):
    status, body = apps.get("/voila/render/00_overview.ipynb?template=reveal&theme=dark", timeout=120)
    assert status == 200
    assert "reveal" not in body.lower() and "theme-light" in body
