# The one configuration of `salesplan serve`: a traitlets config file read by the
# Voila application that serves the apps (every timeout and pool size is here).
# `salesplan serve --config FILE` reads FILE after this one, so a deployment (or a
# test) changes only what it names. Command-line options (--host, --port, --token)
# win over both.
# ruff: noqa: F821  (`c` is the config object traitlets provides)

# --- Preheated kernels -------------------------------------------------------
# Each app keeps `default_pool_size` kernels that have already run the notebook,
# so opening a page only sends the rendered output and connects the widgets.
# The pool is refilled `fill_delay` seconds after a kernel is taken. Every pooled
# kernel costs memory (about 200-250 MB for these apps), so raise the pool of the
# most visited app rather than the default (see kernel_pools_config below).
c.VoilaConfiguration.preheat_kernel = True
c.VoilaConfiguration.default_pool_size = 1
c.VoilaKernelManager.fill_delay = 1.0
# Per-app pool sizes, e.g. the overview, which every visitor opens first:
# c.VoilaKernelManager.kernel_pools_config = {"00_overview.ipynb": {"pool_size": 2}}
# Preheating cannot be combined with these two (Voila refuses to start).
c.VoilaConfiguration.progressive_rendering = False

# --- Releasing kernels -------------------------------------------------------
# A closed page sends a shutdown request for its kernel (the server sets the
# _xsrf cookie the page needs for it). Kernels whose page vanished without saying
# so (a crashed browser, a laptop put to sleep) or that sat idle are culled:
# every `cull_interval` seconds, kernels idle for more than `cull_idle_timeout`
# seconds are shut down, even with a page still connected (`cull_connected`), but
# never while computing (`cull_busy`). Pooled kernels are never culled.
c.MappingKernelManager.cull_idle_timeout = 900
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_connected = True
c.MappingKernelManager.cull_busy = False
# Wait this long for a kernel to start before the page shows an error.
c.MappingKernelManager.kernel_info_timeout = 60

# --- What a page may show ----------------------------------------------------
c.VoilaConfiguration.template = "lab"
c.VoilaConfiguration.strip_sources = True
c.VoilaConfiguration.show_tracebacks = False
# The query string cannot pick another template or theme (each would also bypass
# the preheated kernels).
c.VoilaConfiguration.allow_template_override = "NO"
c.VoilaConfiguration.allow_theme_override = "NO"
# Files a page may load from the notebooks folder: pictures only, never data.
c.VoilaConfiguration.file_allowlist = [r"[^/\\]*\.(png|jpg|jpeg|gif|svg)"]
c.VoilaConfiguration.file_denylist = [r".*\.(ipynb|py|csv|tsv|txt|xlsx|xlsm|xls|parquet|db|json|toml)"]
# Keep the page connection alive through proxies while a cell runs (seconds).
c.VoilaConfiguration.http_keep_alive_timeout = 10

# --- Charts ------------------------------------------------------------------
# Every chart of a served app is a plotly FigureWidget whose JavaScript the page
# imports once from this server (/salesplan/widgets/). plotly's JupyterLab
# renderer would load a second copy of plotly (4.8 MB) into every page for
# nothing, so it is left out.
c.VoilaConfiguration.extension_denylist = ["jupyterlab-plotly"]
# The page asks for that module at once (a <link rel="modulepreload"> in the page's
# head, see templates/index.html.j2), while the rest of the page is still loading.
from salesplan.serve import figure_module_path  # noqa: E402

c.VoilaConfiguration.resources = {"salesplan": {"figure_module": figure_module_path()}}

# --- Server ------------------------------------------------------------------
c.Voila.open_browser = False
# The port given is the port used: no silent move to a neighbouring one.
c.Voila.port_retries = 0
