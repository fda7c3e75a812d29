"""``salesplan serve``: the apps of the workbench as a web server a team can use.

It runs Voila (in this process; :mod:`salesplan.serve._app` adapts it) on the
notebooks folder with

* a home page at ``/`` (:mod:`salesplan.serve.landing`): the data the apps
  show and one card per app, in English or Chinese, without a kernel;
* preheated kernels: every app keeps kernels that already ran its notebook,
  so a page opens without waiting for the notebook to run;
* kernels released when a page closes, and idle ones culled;
* pages that need no internet (no CDN stylesheet or script);
* the apps only: no file tree, contents API, terminals or other notebooks,
  and no URL that reads outside the notebooks folder;
* safe defaults: 127.0.0.1 unless told otherwise, a token required on any
  other address, sources stripped and no traceback in a page.

Every timeout and pool size is in one file, :data:`CONFIG_FILE`
(``salesplan/serve/serve_config.py``); ``--config FILE`` reads another
traitlets config file on top of it.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from salesplan.errors import SalesplanError
from salesplan.i18n import ENV_VAR as LANG_ENV_VAR
from salesplan.i18n import current_lang, t

__all__ = ["SERVE_DIR", "CONFIG_FILE", "TOKEN_ENV_VAR", "DATA_ENV_VAR", "WIDGET_MODULES_ENV", "WIDGET_MODULES_PATH",
           "FIGURE_MODULE", "figure_module_path", "ServeError", "is_local", "check_bind",
           "voila_argv", "serve"]

SERVE_DIR = Path(__file__).resolve().parent
#: The one configuration file: pool sizes, culling and every other timeout.
CONFIG_FILE = SERVE_DIR / "serve_config.py"
#: Read when --token is not given, so that the token need not appear in the process list.
TOKEN_ENV_VAR = "SALESPLAN_TOKEN"
#: What every notebook's ``load_data(None)`` reads; ``--data`` sets it for the kernels.
DATA_ENV_VAR = "SALESPLAN_DATA"
#: Set for the kernels: the path, below the server's base URL, where the server hands out the
#: JavaScript modules of the apps' widgets (see :func:`salesplan.ui._common.figure_widget`).
WIDGET_MODULES_ENV = "SALESPLAN_WIDGET_MODULES"
WIDGET_MODULES_PATH = "salesplan/widgets"
#: plotly's ``FigureWidget`` module there; the version makes a plotly upgrade a new URL.
FIGURE_MODULE = "plotly-figurewidget-{version}.js"


def figure_module_path(prefix: str = WIDGET_MODULES_PATH) -> str:
    """Where plotly's ``FigureWidget`` module is served, below the server's base URL (no leading slash)."""
    import plotly

    return f"{prefix.strip('/')}/{FIGURE_MODULE.format(version=plotly.__version__)}"


class ServeError(SalesplanError):
    """The server cannot start as asked (a public address without a token, a missing folder...)."""


def is_local(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine.

    >>> is_local("127.0.0.1"), is_local("localhost"), is_local("::1"), is_local("0.0.0.0"), is_local("")
    (True, True, True, False, False)
    """
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name: reachable from elsewhere


def check_bind(host: str, token: str | None, *, lang: str | None = None) -> None:
    """Refuse an address other machines can reach unless a token protects it.

    Raises
    ------
    ServeError
        With the message of ``serve.token_required``: what was refused, why,
        and the two ways out (``--token``, or 127.0.0.1 behind a proxy).
    """
    if not is_local(host) and not token:
        raise ServeError(t("serve.token_required", lang, host=host or "0.0.0.0"))


def voila_argv(notebooks: Path, *, host: str, port: int, token: str | None, config: Path | None) -> list[str]:
    """The arguments the Voila application is started with (the rest is in :data:`CONFIG_FILE`)."""
    argv = [str(notebooks), f"--Voila.ip={host}", f"--Voila.port={port}"]
    if token:
        argv.append(f"--Voila.token={token}")
    if config is not None:
        argv.append(f"--SalesplanVoila.extra_config_file={config}")
    return argv


def serve(
    *,
    notebooks: str | Path = "notebooks",
    data: str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8866,
    lang: str | None = None,
    token: str | None = None,
    config: str | Path | None = None,
) -> int:
    """Serve the apps until interrupted; returns the exit code.

    Parameters
    ----------
    notebooks : path, default "notebooks"
        The folder of app notebooks (only ``*.ipynb`` directly in it are served).
    data : path, optional
        A transactions file, a workbook or a folder of tables, given to every
        app as ``$SALESPLAN_DATA``; default: that variable if set, else the demo company.
    host, port
        Where to listen. Any address but a loopback one needs ``token``.
    lang : {"en", "zh"}, optional
        Language of the home page and of the apps (``$SALESPLAN_LANG``).
    token : str, optional
        Required to open any page (``?token=...`` once, then a cookie);
        default ``$SALESPLAN_TOKEN``.
    config : path, optional
        A traitlets config file read after :data:`CONFIG_FILE`.

    Raises
    ------
    ServeError
        Before anything starts, when the address needs a token, or a folder or file is missing.
    """
    lang = current_lang(lang)
    token = token or os.environ.get(TOKEN_ENV_VAR) or None
    check_bind(host, token, lang=lang)
    folder = Path(notebooks).resolve()
    if not folder.is_dir():
        raise ServeError(t("serve.notebooks_missing", lang, path=folder))
    if data is not None:
        data = Path(data).expanduser().resolve()
        if not data.exists():
            raise ServeError(t("serve.data_missing", lang, path=data))
        os.environ[DATA_ENV_VAR] = str(data)
    if config is not None:
        config = Path(config).resolve()
        if not config.is_file():
            raise ServeError(f"--config {config}: no such file.")
    # The kernels inherit this process's environment: the apps read the same data and language.
    os.environ[LANG_ENV_VAR] = lang
    # ... and load the live charts' JavaScript from this server, once per browser.
    os.environ[WIDGET_MODULES_ENV] = WIDGET_MODULES_PATH

    from salesplan.serve._app import SalesplanVoila

    app = SalesplanVoila()
    app.initialize(voila_argv(folder, host=host, port=port, token=token, config=config))
    shown = os.environ.get(DATA_ENV_VAR)
    print(t("serve.data", lang, path=shown) if shown else t("serve.demo_data", lang), file=sys.stderr)
    print(t("serve.starting", lang, url=f"http://{'[' + host + ']' if ':' in host else host}:{app.port}/"),
          file=sys.stderr, flush=True)
    app.start()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m salesplan.serve``: the same as ``salesplan serve``."""
    from salesplan.cli import main as cli_main

    return cli_main(["serve", *(argv if argv is not None else sys.argv[1:])])
