"""Plotly charts for forecasts, backtests and reconciled hierarchies.

Each function takes frames returned by the forecasting functions and returns
a ``plotly.graph_objects.Figure``; nothing is shown or written. Plotly is
imported inside the functions so that the forecasting modules stay
importable without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from salesplan._validation import check_columns, check_frame, check_levels
from salesplan.errors import SalesplanDataError

__all__ = ["forecast_chart", "backtest_chart"]

_TEMPLATE = "plotly_white"
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _model_columns(df: pd.DataFrame, skip: set[str]) -> list[str]:
    return [
        c for c in df.columns
        if c not in skip and "-lo-" not in str(c) and "-hi-" not in str(c)
        and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
    ]


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i: i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def forecast_chart(
    history: pd.DataFrame,
    forecasts: pd.DataFrame,
    *,
    ids: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    level: Sequence[float] | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    title: str | None = None,
) -> Any:
    """History and forecasts with shaded intervals; a dropdown picks the series.

    Parameters
    ----------
    history : DataFrame
        ``id_col, time_col, target_col``: the observed series.
    forecasts : DataFrame
        ``id_col, time_col``, model columns and ``<model>-lo/hi-<level>``
        intervals (the layout of :func:`salesplan.forecast.forecast` and
        :func:`salesplan.forecast.hierarchy.reconcile`).
    ids : list of str, optional
        Series to offer (default: all series of ``forecasts``, in order).
    models : list of str, optional
        Models to draw (default: every model column).
    level : list of float, optional
        Interval levels to shade (default: every level found), widest palest.
    id_col, time_col, target_col : str
        Column names.
    title : str, optional
        Chart title.

    Returns
    -------
    plotly.graph_objects.Figure
        One group of traces per series (history line, a line per model, a
        band per model and level); only the first series is visible until
        another is picked in the dropdown.
    """
    import plotly.graph_objects as go

    check_frame(history, name="history")
    check_columns(history, [id_col, time_col, target_col], name="history")
    check_frame(forecasts, name="forecasts")
    check_columns(forecasts, [id_col, time_col], name="forecasts")
    all_ids = list(pd.unique(forecasts[id_col]))
    ids = all_ids if ids is None else [ids] if isinstance(ids, str) else list(ids)
    unknown = [i for i in ids if i not in all_ids]
    if unknown:
        raise SalesplanDataError(
            f"ids {unknown[:5]} have no forecasts; forecasts holds {all_ids[:8]}"
            + (" ..." if len(all_ids) > 8 else "") + "."
        )
    skip = {id_col, time_col, target_col, "cutoff", "sample"}
    models = _model_columns(forecasts, skip) if models is None else list(models)
    check_columns(forecasts, models, name="forecasts", hint="Pass models= naming forecast columns.")
    if level is None:
        found = {
            c.rsplit("-lo-", 1)[1] for c in forecasts.columns
            if "-lo-" in str(c) and c.rsplit("-lo-", 1)[0] in models
        }
        levels = check_levels([float(x) for x in found]) if found else []
    else:
        levels = check_levels(level)

    fig = go.Figure()
    groups: list[list[int]] = []
    for k, uid in enumerate(ids):
        idx = []
        hist = history[history[id_col] == uid].sort_values(time_col)
        fc = forecasts[forecasts[id_col] == uid].sort_values(time_col)
        visible = k == 0
        for j, mdl in enumerate(models):
            color = _COLORS[(j + 1) % len(_COLORS)]
            for n, lv in enumerate(sorted(levels, reverse=True)):
                lo, hi = f"{mdl}-lo-{lv}", f"{mdl}-hi-{lv}"
                if lo not in fc.columns or hi not in fc.columns:
                    continue
                x = list(fc[time_col]) + list(fc[time_col])[::-1]
                y = list(fc[hi]) + list(fc[lo])[::-1]
                fig.add_trace(go.Scatter(
                    x=x, y=y, fill="toself", fillcolor=_rgba(color, 0.12 + 0.12 * n),
                    line={"width": 0}, hoverinfo="skip", name=f"{mdl} {lv}%",
                    legendgroup=mdl, visible=visible,
                ))
                idx.append(len(fig.data) - 1)
            fig.add_trace(go.Scatter(
                x=fc[time_col], y=fc[mdl], mode="lines+markers", name=mdl,
                line={"color": color}, legendgroup=mdl, visible=visible,
            ))
            idx.append(len(fig.data) - 1)
        fig.add_trace(go.Scatter(
            x=hist[time_col], y=hist[target_col], mode="lines", name="actual",
            line={"color": _COLORS[0]}, visible=visible,
        ))
        idx.append(len(fig.data) - 1)
        groups.append(idx)

    if len(ids) > 1:
        buttons = []
        for k, uid in enumerate(ids):
            vis = [False] * len(fig.data)
            for i in groups[k]:
                vis[i] = True
            buttons.append({"label": str(uid), "method": "update",
                            "args": [{"visible": vis}, {"title.text": f"{title or 'Forecast'}: {uid}"}]})
        fig.update_layout(updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0,
                                        "xanchor": "right", "y": 1.15, "yanchor": "top"}])
    fig.update_layout(
        title=f"{title or 'Forecast'}: {ids[0]}" if ids else title,
        template=_TEMPLATE, hovermode="x unified",
        xaxis_title=time_col, yaxis_title=target_col,
    )
    return fig


def backtest_chart(
    overall: pd.DataFrame,
    *,
    metric: str = "mase",
    baselines: Sequence[str] = ("naive", "snaive"),
    title: str | None = None,
) -> Any:
    """Bars of one accuracy metric per model, baselines in grey.

    Parameters
    ----------
    overall : DataFrame
        ``backtest_summary(...).overall`` (or ``metrics.evaluate(...).overall``):
        ``model`` and the metric column.
    metric : str
        Column to draw (``"mase"``, ``"smape"``, ``"rmsse"``, ``"coverage_80"``...).
    baselines : list of str
        Models drawn in grey.

    Returns
    -------
    plotly.graph_objects.Figure
        Horizontal bars, best (smallest) at the top.
    """
    import plotly.graph_objects as go

    check_frame(overall, name="overall")
    check_columns(overall, ["model", metric], name="overall")
    df = overall.sort_values(metric, ascending=False, kind="stable")
    colors = ["#b0b0b0" if m in baselines else _COLORS[0] for m in df["model"]]
    fig = go.Figure(go.Bar(x=df[metric], y=df["model"].astype(str), orientation="h", marker_color=colors,
                           text=[f"{v:.3g}" for v in df[metric]], textposition="auto"))
    fig.update_layout(title=title or f"Backtest: {metric} by model (baselines in grey)",
                      template=_TEMPLATE, xaxis_title=metric, yaxis_title="model")
    return fig
