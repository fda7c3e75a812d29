"""Learned win probabilities per open deal, checked on a time-based holdout.

A CRM usually gives each stage a fixed probability (the stage average). Here a
plain scikit-learn model learns the chance of winning from what a deal looked
like at the start of each past month: its stage, days in that stage, age,
amount, owner, the customer's segment and the product. The model is judged on
later months than it was fitted on (a time-based split: training rows only use
outcomes known before the cutoff), by the Brier score against the stage-average
baseline, and by a reliability table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from salesplan._validation import check_choice
from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.pipeline._deals import OPEN, WON, PreparedDeals, _to_timestamps, prepare
from salesplan.pipeline._units import unit_columns
from salesplan.pipeline.funnel import wilson_interval
from salesplan.pipeline.process import Process

__all__ = ["WinModel", "snapshots", "reliability_table", "brier_score", "FEATURES"]

#: Features the model can use; those not in the data are left out.
FEATURES = ("stage", "days_in_stage", "age_days", "amount", "rep_id", "segment", "product")
_NUMERIC = ("days_in_stage", "age_days", "amount")
_DAY_NS = 86_400 * 10**9


def _month_starts(first_day: float, last_day: float) -> np.ndarray:
    a = np.datetime64(int(np.floor(first_day)), "D").astype("datetime64[M]") + 1
    b = np.datetime64(int(np.floor(last_day)), "D").astype("datetime64[M]")
    if b < a:
        return np.zeros(0)
    months = np.arange(a, b + 1)
    return months.astype("datetime64[D]").astype(np.int64).astype(float)


def _state_at(d: PreparedDeals, rows: np.ndarray, day: np.ndarray | float):
    """Stage code and entry day of deals ``rows`` on ``day`` (their highest stage entered by then)."""
    ent = d.entered[rows]
    day = np.broadcast_to(np.asarray(day, dtype=float), rows.shape)
    reached = ent <= day[:, None]
    stage = np.maximum(reached.sum(axis=1) - 1, 0)
    entered = ent[np.arange(len(rows)), stage]
    return stage, entered


def _unit_frame(d: PreparedDeals, reps, customers) -> pd.DataFrame:
    """rep_id, segment and product per deal where they can be found."""
    cols = {}
    for c in ("rep_id", "segment", "product"):
        try:
            cols[c] = unit_columns(d, [c], reps, customers)[c].astype(object).to_numpy()
        except SalesplanDataError:
            continue
    return pd.DataFrame(cols)


def snapshots(
    opportunities: pd.DataFrame | PreparedDeals,
    stage_history: pd.DataFrame | None = None,
    *,
    process: Process | None = None,
    reps: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    as_of: object = None,
) -> pd.DataFrame:
    """Each deal as it was at the start of every month it was open, with how it ended.

    Deals without stage history are left out (their past stages are unknown).

    Returns
    -------
    DataFrame
        ``snapshot, opportunity_id, stage, days_in_stage, age_days, amount,
        [rep_id, segment, product], won, closed_at``; ``won`` is 1 or 0 for
        deals closed by ``as_of`` and NaN for deals still open.
    """
    d = prepare(opportunities, stage_history, process=process, as_of=as_of)
    return _snapshots(d, _unit_frame(d, reps, customers))


def _snapshots(d: PreparedDeals, units: pd.DataFrame) -> pd.DataFrame:
    usable = d.has_history & d.valid_dates
    end = np.where(d.status == OPEN, np.inf, d.closed_at)
    days = _month_starts(float(d.created.min()), d.as_of)
    parts_rows, parts_day = [], []
    for t in days:
        rows = np.flatnonzero(usable & (d.created <= t) & (end > t))
        parts_rows.append(rows)
        parts_day.append(np.full(len(rows), t))
    rows = np.concatenate(parts_rows) if parts_rows else np.zeros(0, dtype=np.int64)
    day = np.concatenate(parts_day) if parts_day else np.zeros(0)
    return _features(d, rows, day, units, outcome=True)


def _features(d: PreparedDeals, rows: np.ndarray, day: np.ndarray, units: pd.DataFrame,
              outcome: bool = False) -> pd.DataFrame:
    stage, entered = _state_at(d, rows, day)
    out = pd.DataFrame({
        "snapshot": _to_timestamps(day),
        "opportunity_id": d.opportunities["opportunity_id"].to_numpy()[rows],
        "stage": np.asarray(d.process.stages, dtype=object)[stage],
        "days_in_stage": np.maximum(day - entered, 0.0),
        "age_days": np.maximum(day - d.created[rows], 0.0),
        "amount": d.amount[rows],
    })
    for c in units.columns:
        out[c] = units[c].to_numpy()[rows]
    if outcome:
        st = d.status[rows]
        out["won"] = np.where(st == OPEN, np.nan, (st == WON).astype(float))
        out["closed_at"] = _to_timestamps(d.closed_at[rows])
    return out


def brier_score(y, p) -> float:
    """Mean squared difference between outcome (0/1) and probability."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def reliability_table(y, p, *, bins: int = 10, level: float = 95) -> pd.DataFrame:
    """Calibration: predicted against observed win rate in probability bins.

    Returns
    -------
    DataFrame
        ``bin_lo, bin_hi, deals, mean_probability, win_rate, win_rate_lo,
        win_rate_hi`` (Wilson interval), only bins with deals.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    b = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    n = np.bincount(b, minlength=bins)
    k = np.bincount(b, weights=y, minlength=bins)
    s = np.bincount(b, weights=p, minlength=bins)
    keep = n > 0
    lo, hi = wilson_interval(k[keep], n[keep], level=level)
    return pd.DataFrame({
        "bin_lo": edges[:-1][keep], "bin_hi": edges[1:][keep], "deals": n[keep],
        "mean_probability": s[keep] / n[keep], "win_rate": k[keep] / n[keep],
        "win_rate_lo": lo, "win_rate_hi": hi,
    })


class WinModel:
    """Win probability of each open deal, learned from past months.

    Parameters
    ----------
    kind : {"logistic", "boosting"}
        ``logistic``: logistic regression on one-hot categories and scaled
        log-numbers (with stage x days-in-stage terms); ``boosting``:
        scikit-learn's HistGradientBoostingClassifier.
    features : sequence of str
        Among :data:`FEATURES`; those not in the data are left out.
    holdout_months : int
        The last months kept out of fitting to judge the model.
    refit : bool
        After the holdout check, refit on every month (used by :meth:`predict`).
    seed : int
        Random state of the boosting model.

    Attributes
    ----------
    features_ : list of str
    cutoff_ : Timestamp
        First month of the holdout.
    baseline_ : DataFrame
        ``stage, win_probability``: the stage averages (fitted before the cutoff).
    holdout_ : DataFrame
        Holdout snapshots with ``won, probability, baseline_probability``.
    scores_ : DataFrame
        See :meth:`summary`.
    model_ : sklearn Pipeline
    """

    def __init__(self, kind: str = "logistic", *, features: Sequence[str] = FEATURES,
                 holdout_months: int = 12, refit: bool = True, seed: int = 0):
        self.kind = kind
        self.features = tuple(features)
        self.holdout_months = holdout_months
        self.refit = refit
        self.seed = seed

    # -- model ------------------------------------------------------------------
    def _estimator(self):
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        cats = [f for f in self.features_ if f not in _NUMERIC]
        nums = [f for f in self.features_ if f in _NUMERIC]
        if self.kind == "boosting":
            from sklearn.preprocessing import OrdinalEncoder

            pre = ColumnTransformer([
                ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                       encoded_missing_value=-1), cats),
                ("num", "passthrough", nums),
            ])
            clf = HistGradientBoostingClassifier(
                max_iter=200, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=40,
                l2_regularization=1.0, categorical_features=list(range(len(cats))), random_state=self.seed)
            return Pipeline([("pre", pre), ("clf", clf)])
        log = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
        steps = [
            ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=5), cats),
            ("num", Pipeline([("log", log), ("scale", StandardScaler())]), nums),
        ]
        if "stage" in cats and "days_in_stage" in nums:
            steps.append(("stage_days", FunctionTransformer(_stage_days, validate=False,
                                                            kw_args={"stages": self.stages_}),
                          ["stage", "days_in_stage"]))
        pre = ColumnTransformer(steps)
        return Pipeline([("pre", pre), ("clf", LogisticRegression(C=1.0, max_iter=2000))])

    def _xy(self, snaps: pd.DataFrame):
        x = snaps[list(self.features_)].copy()
        for c in self.features_:
            if c in _NUMERIC:
                x[c] = x[c].astype(float).fillna(x[c].median() if x[c].notna().any() else 0.0)
            else:
                x[c] = x[c].astype(object).where(x[c].notna(), "(missing)").astype(str)
        return x

    def fit(
        self,
        opportunities: pd.DataFrame | PreparedDeals,
        stage_history: pd.DataFrame | None = None,
        *,
        process: Process | None = None,
        reps: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
        as_of: object = None,
    ) -> "WinModel":
        """Fit on the months before the holdout, score the holdout, then (by default) refit on all."""
        check_choice(self.kind, ["logistic", "boosting"], name="kind")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise SalesplanError(f"features {unknown} are not known; choose among {list(FEATURES)}.")
        d = prepare(opportunities, stage_history, process=process, as_of=as_of)
        self.reps_, self.customers_ = reps, customers
        self.stages_ = tuple(d.process.stages)
        units = _unit_frame(d, reps, customers)
        snaps = _snapshots(d, units)
        self.features_ = [f for f in self.features if f in snaps.columns and snaps[f].notna().any()]
        resolved = snaps[snaps["won"].notna()]
        if resolved["won"].nunique() < 2:
            raise SalesplanDataError(
                f"WinModel needs past deals both won and lost to learn from; the {len(resolved)} month-start "
                f"snapshots of closed deals with stage history have outcomes {sorted(resolved['won'].unique())}. "
                "Bring more history (stage_history with dates) or use the stage averages of funnel()."
            )
        months = np.sort(resolved["snapshot"].unique())
        n_hold = min(self.holdout_months, max(len(months) // 3, 0))
        self.cutoff_ = pd.Timestamp(months[-n_hold]) if n_hold else None
        if self.cutoff_ is not None:
            # training rows: snapshots before the cutoff whose outcome was known by then
            train = resolved[(resolved["snapshot"] < self.cutoff_) & (resolved["closed_at"] < self.cutoff_)]
            hold = resolved[resolved["snapshot"] >= self.cutoff_]
        else:
            train, hold = resolved, resolved.iloc[:0]
        if train["won"].nunique() < 2 or len(hold) == 0:
            train, hold = resolved, resolved.iloc[:0]
            self.cutoff_ = None
        self.n_train_, self.n_holdout_ = len(train), len(hold)
        self.baseline_ = self._baseline(train)
        self.model_ = self._estimator().fit(self._xy(train), train["won"].astype(int))
        rows = []
        if len(hold):
            h = hold[["snapshot", "opportunity_id", "stage", "won"]].copy()
            h["probability"] = self.model_.predict_proba(self._xy(hold))[:, 1]
            h["baseline_probability"] = self._base_p(hold["stage"])
            self.holdout_ = h.reset_index(drop=True)
            y = h["won"].to_numpy()
            for name, col in (("model", "probability"), ("stage average", "baseline_probability")):
                p = h[col].to_numpy()
                rows.append((name, brier_score(y, p), _log_loss(y, p), _auc(y, p), len(h)))
        else:
            self.holdout_ = pd.DataFrame(columns=["snapshot", "opportunity_id", "stage", "won", "probability",
                                                  "baseline_probability"])
        scores = pd.DataFrame(rows, columns=["model", "brier", "log_loss", "auc", "holdout_snapshots"])
        if len(scores) == 2:
            scores["brier_skill"] = 1 - scores["brier"] / scores["brier"].iloc[1]
        else:
            scores["brier_skill"] = pd.Series(dtype=float)
        self.scores_ = scores
        if self.refit:
            self.baseline_ = self._baseline(resolved)
            self.model_ = self._estimator().fit(self._xy(resolved), resolved["won"].astype(int))
        return self

    @staticmethod
    def _baseline(train: pd.DataFrame) -> pd.DataFrame:
        b = train.groupby("stage", sort=False)["won"].agg(["mean", "size"]).reset_index()
        b.columns = ["stage", "win_probability", "snapshots"]
        return b

    def _base_p(self, stage: pd.Series) -> np.ndarray:
        overall = float(np.average(self.baseline_["win_probability"], weights=self.baseline_["snapshots"]))
        table = dict(zip(self.baseline_["stage"], self.baseline_["win_probability"]))
        return stage.map(table).astype(float).fillna(overall).to_numpy()

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise SalesplanError("This WinModel is not fitted yet; call fit(opportunities, stage_history) first.")

    # -- results ----------------------------------------------------------------
    def predict(
        self,
        opportunities: pd.DataFrame | PreparedDeals,
        stage_history: pd.DataFrame | None = None,
        *,
        process: Process | None = None,
        reps: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
        as_of: object = None,
    ) -> pd.DataFrame:
        """Win probability of every open deal as of ``as_of``.

        ``reps`` and ``customers`` default to those given to :meth:`fit`.

        Returns
        -------
        DataFrame
            ``opportunity_id, stage, days_in_stage, age_days, amount, [rep_id,
            segment, product], win_probability, baseline_probability,
            expected_value``.
        """
        self._check_fitted()
        d = prepare(opportunities, stage_history, process=process, as_of=as_of)
        reps = self.reps_ if reps is None else reps
        customers = self.customers_ if customers is None else customers
        units = _unit_frame(d, reps, customers)
        rows = np.flatnonzero(d.status == OPEN)
        # the current stage is the highest one reached (it may have no history)
        top = d.top[rows]
        ent = d.entered[rows, top]
        out = pd.DataFrame({
            "opportunity_id": d.opportunities["opportunity_id"].to_numpy()[rows],
            "stage": np.asarray(d.process.stages, dtype=object)[top],
            "days_in_stage": np.maximum(d.as_of - ent, 0.0),
            "age_days": np.maximum(d.as_of - d.created[rows], 0.0),
            "amount": d.amount[rows],
        })
        for c in units.columns:
            out[c] = units[c].to_numpy()[rows]
        missing = [f for f in self.features_ if f not in out.columns]
        if missing:
            raise SalesplanDataError(
                f"The model was fitted with feature(s) {missing} that these opportunities lack; pass the same "
                "reps= and customers= as for fit (or fit with features= without them)."
            )
        out["win_probability"] = self.model_.predict_proba(self._xy(out))[:, 1] if len(out) else []
        out["baseline_probability"] = self._base_p(out["stage"])
        out["expected_value"] = out["win_probability"] * out["amount"]
        return out

    def summary(self) -> pd.DataFrame:
        """Holdout scores of the model and the stage-average baseline.

        Returns
        -------
        DataFrame
            ``model, brier, log_loss, auc, holdout_snapshots, brier_skill`` where
            ``brier_skill`` = 1 - Brier / Brier of the stage average (> 0: better).
        """
        self._check_fitted()
        return self.scores_.copy()

    def reliability(self, *, bins: int = 10, level: float = 95) -> pd.DataFrame:
        """Reliability tables of the model and the baseline on the holdout (column ``model``)."""
        self._check_fitted()
        h = self.holdout_
        parts = []
        for name, col in (("model", "probability"), ("stage average", "baseline_probability")):
            t = reliability_table(h["won"], h[col], bins=bins, level=level)
            t.insert(0, "model", name)
            parts.append(t)
        return pd.concat(parts, ignore_index=True)


def _stage_days(x: pd.DataFrame, stages: tuple[str, ...]) -> np.ndarray:
    """log days in stage per stage: lets the effect of waiting differ by stage."""
    days = np.log1p(x["days_in_stage"].to_numpy(dtype=float))
    cols = [(x["stage"].to_numpy() == s) * (days - 2.5) for s in stages]
    return np.column_stack(cols) / 2.0


def _log_loss(y, p) -> float:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _auc(y, p) -> float:
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1, n0 = y.sum(), (~y).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(p)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
