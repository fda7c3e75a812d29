"""Inputs of target setting: metric panels from transactions and forecast distributions.

Target setting works on two tidy frames:

* a **history panel** ``unique_id, ds, y``: the metric per unit (rep, region,
  product...) per month, built by :func:`metric_panel`;
* a **forecast distribution** as sample paths ``unique_id, ds, sample, y``
  (what :func:`salesplan.forecast.sample_paths` returns). A point + interval
  forecast can be turned into sample paths with :func:`samples_from_intervals`.

:func:`forecast_distribution` calls the project's forecast engine when it is
installed and otherwise falls back to :func:`bootstrap_sample_paths`, a
documented seasonal-naive model with bootstrapped year-over-year growth.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from salesplan._validation import check_choice, check_columns, check_frame, check_positive_int
from salesplan.errors import SalesplanDataError, SalesplanError, SalesplanWarning
from salesplan.schema import TARGET_LEVELS

__all__ = [
    "METRICS",
    "ADDITIVE_METRICS",
    "LEVEL_COLUMNS",
    "metric_panel",
    "bootstrap_sample_paths",
    "samples_from_intervals",
    "forecast_distribution",
    "check_samples",
    "fingerprint",
]

#: Metrics salesplan can compute from the data, and what they need.
METRICS: dict[str, str] = {
    "revenue": "sum of transactions.revenue",
    "units": "sum of transactions.quantity",
    "orders": "number of distinct transactions.order_id",
    "customers": "number of distinct buying customers",
    "new_customers": "customers whose first order falls in the month",
    "avg_order_value": "revenue / orders",
    "win_rate": "won / (won + lost) opportunities by close month (needs opportunities)",
}
#: Metrics that add up across units and months, so they can be allocated.
ADDITIVE_METRICS: tuple[str, ...] = ("revenue", "units", "orders", "new_customers")

#: Target level -> column of the (enriched) transactions holding its key.
LEVEL_COLUMNS: dict[str, str | None] = {
    "company": None,
    "region": "region",
    "team": "team",
    "rep": "rep_id",
    "product": "product_id",
    "category": "category",
    "channel": "channel",
    "segment": "segment",
}


def _month_start(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.to_period("M").dt.to_timestamp()


def _with_level_column(
    transactions: pd.DataFrame,
    level: str,
    *,
    reps: pd.DataFrame | None,
    customers: pd.DataFrame | None,
) -> tuple[pd.DataFrame, str | None]:
    col = LEVEL_COLUMNS[level]
    if col is None or col in transactions.columns:
        return transactions, col
    if level == "team":
        if reps is None or "team" not in reps.columns:
            raise SalesplanDataError(
                "level='team' needs the reps table (rep_id, team) to map transactions.rep_id to teams; "
                "pass reps=load_demo('reps') or a frame with rep_id and team."
            )
        check_columns(transactions, ["rep_id"], name="transactions")
        m = reps.drop_duplicates("rep_id").set_index("rep_id")["team"]
        return transactions.assign(team=transactions["rep_id"].map(m)), "team"
    if level == "segment":
        if customers is None or "segment" not in customers.columns:
            raise SalesplanDataError(
                "level='segment' needs the customers table (customer_id, segment); pass customers=..."
            )
        m = customers.drop_duplicates("customer_id").set_index("customer_id")["segment"]
        return transactions.assign(segment=transactions["customer_id"].map(m)), "segment"
    check_columns(transactions, [col], name="transactions",
                  hint=f"level={level!r} needs a {col!r} column in transactions.")
    return transactions, col


def metric_panel(
    transactions: pd.DataFrame,
    *,
    level: str = "rep",
    metric: str = "revenue",
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    opportunities: pd.DataFrame | None = None,
    complete: bool = True,
) -> pd.DataFrame:
    """Monthly metric per unit of ``level``: the history targets are set on.

    Parameters
    ----------
    transactions : DataFrame
        Order lines (``order_date``, ``customer_id``, ``revenue`` and the
        level's column, e.g. ``rep_id``).
    level : str
        One of :data:`salesplan.schema.TARGET_LEVELS`. ``team`` needs ``reps``,
        ``segment`` needs ``customers``.
    metric : str
        One of :data:`METRICS`. ``win_rate`` needs ``opportunities``.
    complete : bool
        Fill months without activity with 0 between the first and last month
        of the data (for additive metrics), so every unit has every month.

    Returns
    -------
    DataFrame
        ``unique_id`` (the unit's key; ``"all"`` for company), ``ds`` (month
        start), ``y`` (the metric), sorted by ``unique_id, ds``.

    Examples
    --------
    >>> tx = pd.DataFrame({"order_date": pd.to_datetime(["2025-01-05", "2025-01-20", "2025-02-03"]),
    ...                    "customer_id": ["a", "b", "a"], "rep_id": ["r1", "r2", "r1"],
    ...                    "revenue": [10.0, 5.0, 7.0]})
    >>> metric_panel(tx, level="rep")
      unique_id         ds     y
    0        r1 2025-01-01  10.0
    1        r1 2025-02-01   7.0
    2        r2 2025-01-01   5.0
    3        r2 2025-02-01   0.0
    """
    check_choice(level, TARGET_LEVELS, name="level")
    check_choice(metric, list(METRICS), name="metric")
    if metric == "win_rate":
        return _win_rate_panel(opportunities, level=level, reps=reps)
    check_frame(transactions, name="transactions")
    need = {"revenue": ["revenue"], "units": ["quantity"], "orders": ["order_id"],
            "avg_order_value": ["revenue", "order_id"]}.get(metric, [])
    check_columns(transactions, ["order_date", "customer_id", *need], name="transactions",
                  hint=f"metric={metric!r} is {METRICS[metric]}.")
    tx, col = _with_level_column(transactions, level, reps=reps, customers=customers)
    keys = pd.Series("all", index=tx.index, dtype="str") if col is None else tx[col].astype("str")
    missing = keys.isna() | (tx[col].isna() if col is not None else False)
    if missing.any():
        warnings.warn(
            f"{int(missing.sum())} transaction row(s) have no {level} ({col!r} is empty, "
            f"{_rows(missing)}); they are left out of the per-{level} history.",
            SalesplanWarning, stacklevel=2,
        )
    frame = pd.DataFrame({"unique_id": keys, "ds": _month_start(tx["order_date"])})[~missing]
    sub = tx[~missing]
    if metric == "revenue":
        frame["y"] = sub["revenue"].astype(float)
        out = frame.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
    elif metric == "units":
        frame["y"] = sub["quantity"].astype(float)
        out = frame.groupby(["unique_id", "ds"], as_index=False)["y"].sum()
    elif metric == "orders":
        frame["o"] = sub["order_id"]
        out = frame.groupby(["unique_id", "ds"], as_index=False)["o"].nunique().rename(columns={"o": "y"})
    elif metric == "customers":
        frame["c"] = sub["customer_id"]
        out = frame.groupby(["unique_id", "ds"], as_index=False)["c"].nunique().rename(columns={"c": "y"})
    elif metric == "new_customers":
        first = _month_start(tx.groupby("customer_id")["order_date"].transform("min"))[~missing]
        frame["c"] = sub["customer_id"]
        frame = frame[frame["ds"] == first]
        out = frame.groupby(["unique_id", "ds"], as_index=False)["c"].nunique().rename(columns={"c": "y"})
    else:  # avg_order_value
        frame["r"] = sub["revenue"].astype(float)
        frame["o"] = sub["order_id"]
        g = frame.groupby(["unique_id", "ds"], as_index=False).agg(r=("r", "sum"), o=("o", "nunique"))
        out = g.assign(y=g["r"] / g["o"])[["unique_id", "ds", "y"]]
        complete = False
    out["y"] = out["y"].astype(float)
    if complete and len(out):
        months = pd.date_range(_month_start(tx["order_date"]).min(), _month_start(tx["order_date"]).max(), freq="MS")
        ids = out["unique_id"].unique()
        full = pd.MultiIndex.from_product([ids, months], names=["unique_id", "ds"])
        out = out.set_index(["unique_id", "ds"]).reindex(full, fill_value=0.0).reset_index()
    return out.sort_values(["unique_id", "ds"], ignore_index=True)[["unique_id", "ds", "y"]]


def _win_rate_panel(opportunities, *, level, reps):
    if opportunities is None:
        raise SalesplanDataError(
            "metric='win_rate' needs the opportunities table (status, close_date and the level's key); "
            "pass opportunities=..."
        )
    check_columns(opportunities, ["status", "close_date"], name="opportunities")
    opp = opportunities[opportunities["status"].isin(["won", "lost"])]
    opp, col = _with_level_column(opp, level, reps=reps, customers=None)
    keys = pd.Series("all", index=opp.index, dtype="str") if col is None else opp[col].astype("str")
    f = pd.DataFrame({"unique_id": keys, "ds": _month_start(opp["close_date"]),
                      "won": (opp["status"] == "won").astype(float)}).dropna()
    out = f.groupby(["unique_id", "ds"], as_index=False)["won"].mean().rename(columns={"won": "y"})
    return out.sort_values(["unique_id", "ds"], ignore_index=True)


def _rows(mask: pd.Series) -> str:
    from salesplan._validation import describe_rows

    return describe_rows(mask.index[mask.to_numpy()])


def check_samples(samples: pd.DataFrame, *, name: str = "samples") -> pd.DataFrame:
    """Validate a sample-paths frame ``unique_id, ds, sample, y`` and return it typed."""
    check_frame(samples, name=name)
    check_columns(samples, ["unique_id", "ds", "sample", "y"], name=name,
                  hint="Sample paths come from salesplan.forecast.sample_paths (unique_id, ds, sample, y).")
    y = pd.to_numeric(samples["y"], errors="coerce")
    bad = y.isna() | ~np.isfinite(y.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        raise SalesplanDataError(
            f"{name}.y has {int(bad.sum())} missing or non-numeric value(s) ({_rows(bad)}); "
            "every simulated value must be a number."
        )
    return samples.assign(
        unique_id=samples["unique_id"].astype("str"),
        ds=pd.to_datetime(samples["ds"]),
        y=y.astype(float),
    )


def bootstrap_sample_paths(
    history: pd.DataFrame,
    h: int,
    *,
    n_samples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Fallback forecast distribution: seasonal naive x bootstrapped YoY growth.

    Used only when :func:`salesplan.forecast.sample_paths` is not available.
    For each unit and sample path, an annual growth factor is drawn by
    bootstrapping the twelve (month, same month a year before) pairs of the
    last two years and taking the ratio of their sums (the all-unit pairs for
    a unit with less than two years since its first non-zero month), and each
    month gets a resampled multiplicative shock (that month's year-over-year
    ratio relative to the annual one, normalised to mean 1). Month ``t`` of
    the future is the same month one year before times ``growth x shock``. Units with fewer than 13 months start
    from their mean month. Units whose history is all zero get zero paths.

    Parameters
    ----------
    history : DataFrame
        ``unique_id, ds, y`` monthly (month-start ``ds``).
    h : int
        Months to simulate after the last month of the data.
    n_samples : int
        Paths per unit.
    seed : int
        Seed of the generator, so results repeat.

    Returns
    -------
    DataFrame
        ``unique_id, ds, sample, y``.
    """
    check_frame(history, name="history")
    check_columns(history, ["unique_id", "ds", "y"], name="history")
    h = check_positive_int(h, name="h")
    n_samples = check_positive_int(n_samples, name="n_samples")
    rng = np.random.default_rng(seed)
    wide = history.pivot_table(index="unique_id", columns="ds", values="y", aggfunc="sum").sort_index(axis=1)
    last = wide.columns.max()
    months = pd.date_range(last + pd.offsets.MonthBegin(1), periods=h, freq="MS")
    all_months = pd.date_range(wide.columns.min(), last, freq="MS")
    wide = wide.reindex(columns=all_months).fillna(0.0)
    values = wide.to_numpy(dtype=float)
    n_units, n_hist = values.shape
    nonzero = values != 0
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), n_hist)
    span = n_hist - first  # months since the unit's first non-zero month
    pos = np.clip(values, 0, None)
    # Pooled (all units) year-over-year pairs: the fallback for units without two full years.
    pooled_cur = pos[:, -12:].sum(axis=0) if n_hist >= 24 else None
    pooled_prev = pos[:, -24:-12].sum(axis=0) if n_hist >= 24 else None
    out = np.empty((n_units, n_samples, h))
    for i in range(n_units):
        row = pos[i]
        if span[i] >= 24:
            cur, prev = row[-12:], row[-24:-12]
        elif pooled_cur is not None:
            cur, prev = pooled_cur, pooled_prev
        else:
            cur = prev = None
        if cur is not None and prev.sum() > 0 and cur.sum() > 0:
            # Growth: the annual ratio of a bootstrap resample of the twelve month pairs.
            idx = rng.integers(0, 12, size=(n_samples, 12))
            num, den = cur[idx].sum(axis=1), prev[idx].sum(axis=1)
            growth = np.log(np.where(den > 0, num, 1.0) / np.where(den > 0, den, 1.0))
            g0 = np.log(cur.sum() / prev.sum())
            # Month noise: each month's ratio to its year-ago month relative to the annual ratio,
            # normalised to mean 1 so the noise does not shift the level.
            ratio = (cur + 1e-9) / (prev + 1e-9) / np.exp(g0)
            ratio = np.clip(ratio, 0.2, 5.0)
            noise = ratio / ratio.mean()
        else:
            growth = np.zeros(n_samples)
            noise = np.ones(1)
        growth = np.clip(growth, -1.0, 1.0)
        shock = rng.choice(noise, size=(n_samples, h), replace=True)
        if span[i] >= 12:
            base = np.resize(row[-12:], h)
            years = (np.arange(h) // 12 + 1)[None, :]
        else:
            since = row[first[i]:]
            base = np.full(h, since.mean() if len(since) else 0.0)
            years = np.ones((1, h))
        out[i] = base[None, :] * np.exp(growth[:, None] * years) * shock
    ids = np.repeat(wide.index.to_numpy(dtype=object), n_samples * h)
    return pd.DataFrame({
        "unique_id": pd.array(ids, dtype="str"),
        "ds": np.tile(months.to_numpy(), n_units * n_samples),
        "sample": np.tile(np.repeat(np.arange(n_samples), h), n_units),
        "y": out.reshape(-1),
    })


def samples_from_intervals(
    forecast: pd.DataFrame,
    *,
    model: str | None = None,
    level: int = 80,
    n_samples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Sample paths from a point + interval forecast (normal approximation).

    Each month is drawn independently from a normal with the point forecast as
    mean and the standard deviation implied by the ``level`` interval
    (``(hi - lo) / (2 z)``), truncated at zero. Months being independent, the
    spread of a period total is narrower than with true sample paths; prefer
    :func:`salesplan.forecast.sample_paths` when available.

    Parameters
    ----------
    forecast : DataFrame
        ``unique_id, ds, <model>, <model>-lo-<level>, <model>-hi-<level>`` as
        returned by :func:`salesplan.forecast.forecast`.
    model : str, optional
        Column of the point forecast; default the first column that has
        matching interval columns.

    Returns
    -------
    DataFrame
        ``unique_id, ds, sample, y``.
    """
    from scipy.stats import norm

    check_frame(forecast, name="forecast")
    check_columns(forecast, ["unique_id", "ds"], name="forecast")
    if model is None:
        cands = [c for c in forecast.columns if f"{c}-lo-{level}" in forecast.columns]
        if not cands:
            raise SalesplanDataError(
                f"forecast has no point column with '-lo-{level}'/'-hi-{level}' interval columns; "
                f"columns found: {list(forecast.columns)}. Pass model= and level= matching them."
            )
        model = cands[0]
    check_columns(forecast, [model, f"{model}-lo-{level}", f"{model}-hi-{level}"], name="forecast")
    z = norm.ppf(0.5 + level / 200)
    mu = forecast[model].to_numpy(float)
    sd = np.maximum((forecast[f"{model}-hi-{level}"] - forecast[f"{model}-lo-{level}"]).to_numpy(float) / (2 * z), 0)
    rng = np.random.default_rng(seed)
    draws = np.maximum(mu[:, None] + sd[:, None] * rng.standard_normal((len(mu), n_samples)), 0.0)
    return pd.DataFrame({
        "unique_id": np.repeat(forecast["unique_id"].astype("str").to_numpy(), n_samples),
        "ds": np.repeat(pd.to_datetime(forecast["ds"]).to_numpy(), n_samples),
        "sample": np.tile(np.arange(n_samples), len(mu)),
        "y": draws.reshape(-1),
    })


def forecast_distribution(
    history: pd.DataFrame,
    h: int,
    *,
    n_samples: int = 500,
    seed: int = 0,
    model: str = "auto",
    use_engine: bool = True,
) -> tuple[pd.DataFrame, str]:
    """Sample paths for ``h`` months after the history: the engine, else the fallback.

    Calls :func:`salesplan.forecast.sample_paths` (``model``) when that module
    is importable and ``use_engine`` is true; otherwise (with a
    :class:`SalesplanWarning`) uses :func:`bootstrap_sample_paths`.

    Returns
    -------
    (DataFrame, str)
        The sample paths ``unique_id, ds, sample, y`` and the source used:
        ``"salesplan.forecast.sample_paths(model=...)"`` or ``"bootstrap fallback"``.
    """
    if use_engine:
        try:
            from salesplan.forecast import sample_paths
        except ImportError:
            sample_paths = None
        if sample_paths is not None:
            paths = sample_paths(history, h, model=model, n_samples=n_samples, seed=seed, freq="MS")
            return check_samples(paths), f"salesplan.forecast.sample_paths(model={model!r})"
        warnings.warn(
            "salesplan.forecast.sample_paths is not available; target probabilities use the "
            "seasonal-naive + bootstrapped YoY growth fallback (bootstrap_sample_paths).",
            SalesplanWarning, stacklevel=2,
        )
    return bootstrap_sample_paths(history, h, n_samples=n_samples, seed=seed), "bootstrap fallback"


def fingerprint(frames: Mapping[str, pd.DataFrame | None]) -> str:
    """A short sha256 of input frames (names, columns and values): the data a plan was made from."""
    h = hashlib.sha256()
    for name in sorted(frames):
        df = frames[name]
        if df is None:
            continue
        if not isinstance(df, pd.DataFrame):
            raise SalesplanError(f"fingerprint: {name!r} must be a DataFrame, got {type(df).__name__}.")
        h.update(name.encode())
        h.update("|".join(map(str, df.columns)).encode())
        h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]
