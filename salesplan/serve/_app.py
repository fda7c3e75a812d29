"""The Voila application behind ``salesplan serve``.

Voila's own application (not a Jupyter server extension) is used because it
registers only what a published app needs: kernels, their websocket, static
files and the render page. Here its file tree and contents API are dropped,
the render page serves only the notebooks found at start-up, a home page and
a health endpoint are added, every URL is checked for path traversal, and
error pages never carry a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tornado.web
from jupyter_server._tz import utcnow
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado.websocket import WebSocketHandler
from traitlets import Unicode, default
from voila.app import Voila
from voila.tornado.contentshandler import VoilaContentsHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from salesplan.errors import SalesplanError
from salesplan.i18n import current_lang, normalize_lang, t
from salesplan.serve import CONFIG_FILE, DATA_ENV_VAR, FIGURE_MODULE, SERVE_DIR, WIDGET_MODULES_PATH, check_bind
from salesplan.serve.landing import data_summary, find_apps, render_landing, render_message

__all__ = ["SalesplanVoila"]

#: The home page's language choice, remembered by the browser.
LANG_COOKIE = "salesplan_lang"
#: How long the home page waits for the data summary before saying it is still being read.
SUMMARY_WAIT_S = 20.0

# A parent-directory step, a backslash or a NUL byte, once the path is decoded.
_TRAVERSAL = re.compile(r"(^|/)\.\.(/|$)|\\|\x00")


def _is_traversal(path: str) -> bool:
    """Whether a request path (percent-encoded, perhaps more than once) steps outside where it points.

    >>> _is_traversal("/voila/static/../../etc/passwd"), _is_traversal("/voila/files/%252e%252e%252fx")
    (True, True)
    >>> _is_traversal("/voila/render/00_overview.ipynb")
    False
    """
    seen = path
    for _ in range(4):
        if _TRAVERSAL.search(seen):
            return True
        decoded = urllib.parse.unquote(seen)
        if decoded == seen:
            return False
        seen = decoded
    return True  # still encoded after four rounds: nothing legitimate looks like that


def _request_lang(handler: tornado.web.RequestHandler) -> str:
    return normalize_lang(handler.get_cookie(LANG_COOKIE)) or current_lang()


class _Guarded:
    """Mixed into every handler: refuse traversal, and answer errors without a traceback."""

    def prepare(self):
        if _is_traversal(self.request.path):
            raise tornado.web.HTTPError(404)
        return super().prepare()

    def write_error(self, status_code: int, **kwargs) -> None:
        if isinstance(self, WebSocketHandler):
            return super().write_error(status_code, **kwargs)
        self.clear()
        self.set_status(status_code)
        if isinstance(self, APIHandler) or self.request.path.startswith(("/api/", "/voila/api/", "/salesplan/api/")):
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": status_code, "message": self._reason}))
            return
        key = {403: "serve.forbidden", 404: "serve.not_found"}.get(status_code, "serve.error")
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        base = self.settings.get("base_url", "/")
        self.finish(render_message(status_code, key, lang=_request_lang(self), base_url=base))


def _guarded(cls: type) -> type:
    return type(f"Guarded{cls.__name__}", (_Guarded, cls), {})


class AppHandler(TornadoVoilaHandler):
    """Voila's render page for the apps found at start-up only; query arguments other than the token are dropped."""

    def initialize(self, **kwargs):
        self.apps = kwargs.pop("apps")
        super().initialize(**kwargs)

    def prepare(self):
        # ?template= or ?theme= would render another way (and bypass the preheated kernels).
        for store in (self.request.arguments, self.request.query_arguments):
            for name in [k for k in store if k != "token"]:
                del store[name]
        return super().prepare()

    @tornado.web.authenticated
    async def get(self, path=None):
        if path not in self.apps:
            raise tornado.web.HTTPError(404)
        # The page's close request (a beacon sent on `beforeunload`) carries this
        # cookie back as its _xsrf field; without it the shutdown is refused with a
        # 403 and the kernel keeps running until culled.
        self.xsrf_token  # noqa: B018 - reading it sets the cookie
        await super().get(path)


class NotFoundHandler(JupyterHandler):
    """Every URL no route claims: a plain "no such page" in the visitor's language."""

    def prepare(self):
        raise tornado.web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs) -> None:
        _Guarded.write_error(self, status_code, **kwargs)


class _DataSummary:
    """The home page's data summary, read once in a worker thread when the server starts."""

    def __init__(self, source: str | None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="salesplan-summary")
        self._future = self._pool.submit(data_summary, source)

    async def get(self, wait: float) -> tuple[dict | None, str]:
        """(summary or None while still reading, problem text or "")."""
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._future)), wait), ""
        except asyncio.TimeoutError:
            return None, ""
        except SalesplanError as exc:
            return None, str(exc)
        except Exception as exc:  # noqa: BLE001 - a page shows a sentence; the log keeps the rest
            return None, type(exc).__name__


class LandingHandler(JupyterHandler):
    """The home page (no kernel): the data the apps show, one card per app, the language switch."""

    def initialize(self, summary: _DataSummary, notebooks: str) -> None:
        self.summary = summary
        self.notebooks = notebooks

    @tornado.web.authenticated
    async def get(self):
        asked = normalize_lang(self.get_query_argument("lang", None))
        if asked:
            self.set_cookie(LANG_COOKIE, asked, httponly=True, samesite="Lax",
                            path=self.settings.get("base_url", "/"))
        lang = asked or _request_lang(self)
        summary, problem = await self.summary.get(SUMMARY_WAIT_S)
        if problem:
            self.log.warning("The data summary failed: %s", problem)
        self.xsrf_token  # noqa: B018 - the cookie the app pages' close request needs
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(render_landing(find_apps(self.notebooks, lang=lang), summary, lang=lang,
                                   base_url=self.base_url, problem=problem))


class HealthHandler(APIHandler):
    """``/salesplan/api/health``: kernels running and preheated kernels ready per app (for probes and tests)."""

    @tornado.web.authenticated
    def get(self):
        km = self.kernel_manager
        ready = {}
        for notebook, pool in getattr(km, "_pools", {}).items():
            count = 0
            for task in pool:
                if task.done() and not task.cancelled() and task.exception() is None:
                    render = task.result().get("task")
                    count += bool(render is not None and render.done())
            ready[notebook] = count
        self.finish(json.dumps({"kernels": len(km.list_kernel_ids()), "ready": ready,
                                "pool_size": {nb: km.kernel_pools_config.get(nb, km.kernel_pools_config.get(
                                    "default", {})).get("pool_size", 0) for nb in ready}
                                if hasattr(km, "kernel_pools_config") else {}}))


class WidgetModuleHandler(JupyterHandler):
    """The JavaScript module of plotly's ``FigureWidget``, one file for every chart of every page.

    The apps' live charts import it from here (see :func:`salesplan.ui._common.figure_widget`)
    instead of each carrying its 5 MB in the widget state. The version is in the URL, so
    the browser may keep it: a plotly upgrade is a new URL.
    """

    @tornado.web.authenticated
    def get(self, version: str):
        import plotly

        if version != plotly.__version__:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "text/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "private, max-age=31536000, immutable")
        self.finish(_figure_module_source())


@functools.cache
def _figure_module_source() -> bytes:
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "widgetbundle.js").read_bytes()


class _FreshWhenHandedOut:
    """Mixed into Voila's pooling kernel manager: a kernel taken from the pool starts its idle clock anew.

    A pooled kernel may have waited longer than the cull timeout (pooled kernels
    are never culled); without this, the culler would shut it down the moment a
    page takes it, before the page connects.
    """

    async def get_rendered_notebook(self, *args, **kwargs):
        render_task, rendered_cache, kernel_id = await super().get_rendered_notebook(*args, **kwargs)
        self.get_kernel(kernel_id).last_activity = utcnow()
        return render_task, rendered_cache, kernel_id


class SalesplanVoila(Voila):
    """Voila serving the apps of a notebooks folder, configured by :data:`salesplan.serve.CONFIG_FILE`."""

    extra_config_file = Unicode("", config=True, help="A traitlets config file read after the package's own.")

    @default("config_file_paths")
    def _config_file_paths_default(self):
        # Only the package's configuration (and --config): a voila.json lying in the
        # working directory or the Jupyter config path must not loosen the settings.
        return [str(SERVE_DIR)]

    def load_config_file(self, filename, path=None):  # Voila asks for "voila"; read ours instead
        super().load_config_file(CONFIG_FILE.stem, path=[str(CONFIG_FILE.parent)])
        if self.extra_config_file:
            extra = Path(self.extra_config_file)
            super().load_config_file(extra.stem, path=[str(extra.parent)])

    def initialize(self, argv=None):
        super().initialize(argv)
        check_bind(self.ip, self.token)

    def setup_template_dirs(self):
        super().setup_template_dirs()
        # The package's index.html.j2 (the lab template without CDN stylesheets) comes first.
        self.template_paths.insert(0, str(SERVE_DIR / "templates"))

    def init_settings(self):
        settings = super().init_settings()
        km = self.kernel_manager
        if hasattr(km, "get_rendered_notebook"):  # preheating on
            km.__class__ = type(f"Salesplan{type(km).__name__}", (_FreshWhenHandedOut, type(km)), {})
        settings["default_handler_class"] = NotFoundHandler
        settings["serve_traceback"] = False
        return settings

    def init_handlers(self):
        apps = frozenset(p.name for p in Path(self.root_dir).glob("*.ipynb"))
        handlers = [
            (url_path_join(self.server_url, "/"), LandingHandler,
             {"summary": _DataSummary(os.environ.get(DATA_ENV_VAR) or None), "notebooks": self.root_dir}),
            (url_path_join(self.server_url, "/salesplan/api/health"), HealthHandler),
            (url_path_join(self.server_url, "/", WIDGET_MODULES_PATH,
                           FIGURE_MODULE.format(version=r"([0-9A-Za-z.+-]+)").replace(".js", r"\.js")),
             WidgetModuleHandler),
        ]
        for spec in super().init_handlers():
            pattern, cls, *rest = spec
            kwargs = dict(rest[0]) if rest else None
            if issubclass(cls, (TornadoVoilaTreeHandler, VoilaContentsHandler)):
                continue  # no file tree, no contents API
            if issubclass(cls, TornadoVoilaHandler):
                cls, kwargs = AppHandler, {**(kwargs or {}), "apps": apps}
            handlers.append((pattern, cls) if kwargs is None else (pattern, cls, kwargs))
        return [(spec[0], _guarded(spec[1]), *spec[2:]) for spec in handlers]
