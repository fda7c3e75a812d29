"""The interactive layer: ipywidgets apps. The only part of salesplan that imports ipywidgets."""

from __future__ import annotations

import importlib

_APPS = {
    "TargetPlanner": "salesplan.ui.planner",
    "OverviewApp": "salesplan.ui.overview",
    "PipelineApp": "salesplan.ui.pipeline",
    "ReviewApp": "salesplan.ui.review",
    "MarketApp": "salesplan.ui.market",
    "ForecastApp": "salesplan.ui.forecast",
    "SegmentApp": "salesplan.ui.segments",
    # A chart for a notebook's own figures (live under `salesplan serve`, like the apps' charts).
    "PlotArea": "salesplan.ui._common",
}

__all__ = list(_APPS)


def __getattr__(name: str):
    # Imported lazily so that `import salesplan.ui` stays cheap and each app's
    # dependencies load only when that app is used.
    if name in _APPS:
        return getattr(importlib.import_module(_APPS[name]), name)
    raise AttributeError(f"module 'salesplan.ui' has no attribute {name!r}")
