"""Plotly charts for the market and segmentation frames.

Each function takes the frame returned by one analysis function (named in its
docstring) and returns a ``plotly.graph_objects.Figure``; nothing is shown or
written. Plotly is imported inside the functions so that the analysis
modules stay importable without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_frame

__all__ = [
    "sales_chart",
    "growth_chart",
    "share_chart",
    "decomposition_chart",
    "seasonal_index_chart",
    "growth_share_chart",
    "pareto_chart",
    "pvm_waterfall",
    "new_vs_returning_chart",
    "cohort_heatmap",
    "market_share_chart",
    "rfm_segment_chart",
    "rfm_grid_chart",
    "cluster_chart",
]

_TEMPLATE = "plotly_white"


def _by_cols(df: pd.DataFrame, known: set[str]) -> list[str]:
    return [c for c in df.columns if c not in known]


def _label(df: pd.DataFrame, cols: list[str]) -> pd.Series | None:
    if not cols:
        return None
    out = df[cols[0]].astype("str")
    for c in cols[1:]:
        out = out + "/" + df[c].astype("str")
    return out


def sales_chart(sot: pd.DataFrame, *, value: str = "revenue", title: str | None = None) -> Any:
    """Lines of :func:`salesplan.market.sales_over_time` output, one per unit."""
    import plotly.express as px

    check_frame(sot, name="sot")
    check_columns(sot, ["ds", value], name="sot")
    by = _by_cols(sot, {"ds", value})
    df = sot.assign(unit=_label(sot, by)) if by else sot
    fig = px.line(df, x="ds", y=value, color="unit" if by else None, markers=True,
                  title=title or f"{value.replace('_', ' ').capitalize()} over time", template=_TEMPLATE)
    fig.update_layout(xaxis_title=None, legend_title=None)
    return fig


def growth_chart(g: pd.DataFrame, *, column: str = "growth_yoy", title: str | None = None) -> Any:
    """Bars of growth rates from :func:`salesplan.market.growth` (``growth_yoy`` or ``growth_pop``)."""
    import plotly.express as px

    check_columns(g, ["ds", column], name="growth")
    by = [c for c in g.columns if c not in {"ds", column} and not c.startswith("growth")
          and not pd.api.types.is_numeric_dtype(g[c])]
    df = g.dropna(subset=[column])
    df = df.assign(unit=_label(df, by)) if by else df
    fig = px.bar(df, x="ds", y=column, color="unit" if by else None, barmode="group",
                 title=title or ("Year-over-year growth" if column == "growth_yoy" else "Period-over-period growth"),
                 template=_TEMPLATE)
    fig.update_layout(yaxis_tickformat=".0%", xaxis_title=None, legend_title=None)
    return fig


def share_chart(sh: pd.DataFrame, *, by: str, title: str | None = None) -> Any:
    """Stacked shares per period from :func:`salesplan.market.share`."""
    import plotly.express as px

    check_columns(sh, [by, "ds", "share"], name="share")
    fig = px.bar(sh, x="ds", y="share", color=by, title=title or f"Share of revenue by {by}",
                 hover_data={"share_change_pp": ":.1f"} if "share_change_pp" in sh else None,
                 template=_TEMPLATE)
    fig.update_layout(yaxis_tickformat=".0%", xaxis_title=None, barmode="stack")
    return fig


def decomposition_chart(dec: pd.DataFrame, *, unique_id: str | None = None, title: str | None = None) -> Any:
    """Observed, trend, seasonal and residual panels of :func:`salesplan.market.decompose`."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    check_columns(dec, ["unique_id", "ds", "observed", "trend", "seasonal", "resid"], name="dec")
    uid = unique_id if unique_id is not None else dec["unique_id"].iloc[0]
    d = dec[dec["unique_id"] == uid]
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.04,
                        subplot_titles=("Observed", "Trend", "Seasonal", "Residual"))
    for i, col in enumerate(("observed", "trend", "seasonal", "resid"), start=1):
        trace = go.Bar if col == "resid" else go.Scatter
        fig.add_trace(trace(x=d["ds"], y=d[col], name=col, showlegend=False), row=i, col=1)
    fig.update_layout(height=650, title=title or f"Seasonal-trend decomposition: {uid}", template=_TEMPLATE)
    return fig


def seasonal_index_chart(si: pd.DataFrame, *, title: str | None = None) -> Any:
    """Seasonal index per month (or quarter) and unit from :func:`salesplan.market.seasonal_indices`."""
    import plotly.express as px

    season = "month" if "month" in si.columns else "quarter"
    check_columns(si, ["unique_id", season, "seasonal_index"], name="seasonal_indices")
    fig = px.line(si, x=season, y="seasonal_index", color="unique_id", markers=True,
                  title=title or f"Seasonal index by {season} (1.0 = average {season})", template=_TEMPLATE)
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey")
    fig.update_layout(xaxis=dict(tickmode="linear", dtick=1), legend_title=None)
    return fig


def growth_share_chart(gs: pd.DataFrame, *, title: str | None = None) -> Any:
    """BCG bubble chart of :func:`salesplan.market.growth_share` (bubble size = current value)."""
    import plotly.express as px

    check_columns(gs, ["relative_share", "growth", "value_current", "quadrant"], name="growth_share")
    unit = gs.columns[0]
    df = gs.replace([np.inf, -np.inf], np.nan).dropna(subset=["relative_share", "growth"])
    df = df.assign(size=df["value_current"].clip(lower=0))
    fig = px.scatter(df, x="relative_share", y="growth", size="size", color="quadrant", text=unit,
                     log_x=True, size_max=45, hover_data={"share": ":.1%", "size": False},
                     category_orders={"quadrant": ["Stars", "Cash cows", "Question marks", "Dogs"]},
                     title=title or f"Growth-share matrix by {unit}", template=_TEMPLATE)
    fig.add_vline(x=gs.attrs.get("share_threshold", 1.0), line_dash="dot", line_color="grey")
    if "growth_threshold" in gs.attrs and np.isfinite(gs.attrs["growth_threshold"]):
        fig.add_hline(y=gs.attrs["growth_threshold"], line_dash="dot", line_color="grey")
    fig.update_traces(textposition="top center")
    fig.update_layout(xaxis_title="Relative share (log; 1 = level with the largest other)",
                      yaxis_title="Growth", yaxis_tickformat=".0%")
    return fig


def pareto_chart(abc: pd.DataFrame, *, title: str | None = None) -> Any:
    """Pareto bars and cumulative-share line of :func:`salesplan.market.abc_analysis`."""
    import plotly.graph_objects as go

    check_columns(abc, ["share", "cumulative_share", "abc_class", "rank"], name="abc")
    unit = abc.columns[0]
    colors = {"A": "#1f77b4", "B": "#ff7f0e", "C": "#9e9e9e"}
    fig = go.Figure()
    fig.add_trace(go.Bar(x=abc["rank"], y=abc["share"], name="share",
                         marker_color=[colors.get(c, "grey") for c in abc["abc_class"]],
                         hovertext=abc[unit].astype("str")))
    fig.add_trace(go.Scatter(x=abc["rank"], y=abc["cumulative_share"], name="cumulative share",
                             yaxis="y2", mode="lines"))
    fig.update_layout(title=title or f"Pareto of {unit} (A blue, B orange, C grey)", template=_TEMPLATE,
                      xaxis_title=f"{unit} rank", yaxis=dict(title="share", tickformat=".0%"),
                      yaxis2=dict(overlaying="y", side="right", range=[0, 1.02], tickformat=".0%"),
                      legend=dict(orientation="h"))
    return fig


def pvm_waterfall(summary: pd.DataFrame, *, title: str | None = None) -> Any:
    """Waterfall bridge of :func:`salesplan.market.pvm_summary` (empty effects left out)."""
    import plotly.graph_objects as go

    check_columns(summary, ["step", "value", "measure"], name="summary")
    df = summary[(summary["measure"] == "absolute") | (summary["value"].abs() > 0)]
    fig = go.Figure(go.Waterfall(x=df["step"], y=df["value"], measure=df["measure"],
                                 text=[f"{v:,.0f}" for v in df["value"]], textposition="outside"))
    fig.update_layout(title=title or "Revenue bridge: price, volume, mix", template=_TEMPLATE, showlegend=False)
    return fig


def new_vs_returning_chart(nvr: pd.DataFrame, *, value: str = "revenue", title: str | None = None) -> Any:
    """Stacked new vs returning revenue from :func:`salesplan.market.new_vs_returning`."""
    import plotly.express as px

    check_columns(nvr, ["ds", "customer_type", value], name="nvr")
    fig = px.bar(nvr, x="ds", y=value, color="customer_type", hover_data=["customers"],
                 title=title or f"{value.capitalize()} from new and returning customers", template=_TEMPLATE)
    fig.update_layout(xaxis_title=None, legend_title=None)
    return fig


def cohort_heatmap(cohorts: pd.DataFrame, *, title: str | None = None) -> Any:
    """Retention heatmap (cohort x periods since first order) of :func:`salesplan.market.cohort_matrix`."""
    import plotly.express as px

    check_columns(cohorts, ["cohort", "period_number", "retention"], name="cohorts")
    wide = cohorts.pivot(index="cohort", columns="period_number", values="retention")
    wide.index = wide.index.strftime("%Y-%m-%d")
    fig = px.imshow(wide, aspect="auto", color_continuous_scale="Blues", zmin=0,
                    zmax=float(np.nanquantile(wide.to_numpy(dtype="float64"), 0.98)) if wide.notna().any().any() else 1,
                    labels=dict(x="periods since first order", y="cohort", color="retention"),
                    title=title or "Cohort retention", template=_TEMPLATE)
    return fig


def market_share_chart(ms: pd.DataFrame, *, title: str | None = None) -> Any:
    """Our sales against the untapped potential per unit, from :func:`salesplan.market.market_share`."""
    import plotly.express as px

    check_columns(ms, ["ds", "sales", "potential", "market_share"], name="market_share")
    by = _by_cols(ms, {"ds", "sales", "market_size", "market_share", "potential"})
    last = ms[ms["ds"] == ms["ds"].max()]
    last = last.assign(unit=_label(last, by) if by else "total")
    long = last.melt(id_vars=["unit"], value_vars=["sales", "potential"], var_name="part", value_name="amount")
    fig = px.bar(long, x="unit", y="amount", color="part", barmode="stack",
                 title=title or f"Sales and untapped potential, {ms['ds'].max():%Y-%m}", template=_TEMPLATE)
    fig.update_layout(xaxis_title=None, legend_title=None)
    return fig


def rfm_segment_chart(summary: pd.DataFrame, *, title: str | None = None) -> Any:
    """Customers and value share per segment, from :func:`salesplan.segments.rfm.rfm_summary`."""
    import plotly.graph_objects as go

    check_columns(summary, ["segment", "customer_share", "monetary_share"], name="summary")
    fig = go.Figure()
    fig.add_trace(go.Bar(y=summary["segment"], x=summary["customer_share"], name="customers", orientation="h"))
    fig.add_trace(go.Bar(y=summary["segment"], x=summary["monetary_share"], name="revenue", orientation="h"))
    fig.update_layout(title=title or "RFM segments: share of customers and of revenue", barmode="group",
                      xaxis_tickformat=".0%", yaxis=dict(autorange="reversed"), template=_TEMPLATE)
    return fig


def rfm_grid_chart(segments: pd.DataFrame, *, title: str | None = None) -> Any:
    """Customers per (R, FM) cell with the segment names, from :func:`salesplan.segments.rfm.rfm_segments`."""
    import plotly.graph_objects as go

    check_columns(segments, ["r_score", "fm_score", "segment"], name="segments")
    from salesplan.segments.rfm import RFM_SEGMENT_RULES, _lookup

    counts = segments.groupby(["fm_score", "r_score"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=range(1, 6), columns=range(1, 6), fill_value=0)
    lut = _lookup(RFM_SEGMENT_RULES)
    names = RFM_SEGMENT_RULES["segment"].tolist()
    text = [[f"{names[lut[r, fm]]}<br>{counts.loc[fm, r]}" for r in range(1, 6)] for fm in range(1, 6)]
    fig = go.Figure(go.Heatmap(z=counts.to_numpy(), x=list(range(1, 6)), y=list(range(1, 6)), text=text,
                               texttemplate="%{text}", colorscale="Blues", colorbar=dict(title="customers")))
    fig.update_layout(title=title or "Customers per RFM cell", xaxis_title="R score (5 = most recent)",
                      yaxis_title="FM score (5 = most frequent / valuable)", template=_TEMPLATE)
    return fig


def cluster_chart(model: Any, *, title: str | None = None) -> Any:
    """Heatmap of each cluster's mean z-score per feature, from a fitted :class:`~salesplan.segments.cluster.CustomerClusters`."""
    import plotly.express as px

    centers = model.centers_
    wide = centers.pivot(index="cluster", columns="feature", values="z").reindex(columns=model.feature_names_)
    prof = model.profile()
    wide.index = [f"{c}: {lbl}" for c, lbl in zip(prof["cluster"], prof["label"])]
    lim = float(np.nanmax(np.abs(wide.to_numpy()))) if wide.size else 1.0
    fig = px.imshow(wide, aspect="auto", color_continuous_scale="RdBu_r", zmin=-lim, zmax=lim,
                    labels=dict(color="z vs all"), title=title or "What distinguishes each cluster",
                    template=_TEMPLATE)
    return fig
