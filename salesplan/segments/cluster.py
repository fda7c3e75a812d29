"""Behavioural customer clusters (k-means on RFM, tenure and mix features).

:func:`customer_features` builds one row of numeric features per customer;
:class:`CustomerClusters` groups them with scikit-learn's ``KMeans`` after a
signed log transform of skewed features and standard scaling, choosing the
number of clusters by the silhouette score when ``k`` is not given, and
describes each cluster in words (:meth:`CustomerClusters.profile`).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> feats = pd.DataFrame({"customer_id": [f"c{i}" for i in range(60)],
...                       "frequency": np.r_[rng.normal(2, .3, 30), rng.normal(20, 2, 30)],
...                       "monetary": np.r_[rng.normal(100, 10, 30), rng.normal(900, 50, 30)]})
>>> model = CustomerClusters(k_range=(2, 4)).fit(feats)
>>> model.k_
2
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_dates, check_frame, check_positive_int
from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan._validation import drop_guest_lines
from salesplan.segments.rfm import rfm_table

__all__ = ["customer_features", "CustomerClusters"]


def _slug(value: Any) -> str:
    text = re.sub(r"[^0-9a-zA-Z]+", "_", str(value).strip().lower()).strip("_")
    return text or "missing"


def customer_features(
    tx: pd.DataFrame,
    *,
    as_of: Any = None,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    value_col: str = "revenue",
    mix_cols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Behavioural features per customer, for clustering.

    Parameters
    ----------
    tx : DataFrame
        Transactions.
    as_of : date-like, optional
        As in :func:`salesplan.segments.rfm.rfm_table` (default: last date).
    mix_cols : list of str, optional
        Columns whose revenue mix becomes features. Default: whichever of
        ``category`` and ``channel`` are present.

    Returns
    -------
    DataFrame
        One row per customer, sorted by customer. Columns: ``customer_col``,
        ``recency``, ``tenure`` (days), ``frequency`` (purchase days),
        ``monetary`` (net sum), ``avg_order_value`` (monetary / frequency),
        ``purchases_per_month`` (frequency / months of tenure, tenure at
        least one month), and per mix column value ``<col>_<value>_share``:
        the share of the customer's *positive* revenue in that value (0..1;
        the shares of one column sum to 1, or are all 0 for a customer with
        no positive revenue).
    """
    check_frame(tx, name="tx")
    check_columns(tx, [customer_col], name="tx")
    tx = drop_guest_lines(tx, customer_col=customer_col, value_col=value_col, caller="customer_features", stacklevel=2)
    rfm = rfm_table(tx, as_of=as_of, customer_col=customer_col, date_col=date_col, value_col=value_col)
    feats = rfm[[customer_col, "recency", "tenure", "frequency", "monetary"]].copy()
    feats["avg_order_value"] = feats["monetary"] / feats["frequency"]
    months = np.maximum(feats["tenure"].to_numpy() / 30.4375, 1.0)
    feats["purchases_per_month"] = feats["frequency"].to_numpy() / months
    if mix_cols is None:
        mix_cols = [c for c in ("category", "channel") if c in tx.columns]
    check_columns(tx, list(mix_cols), name="tx")
    labels: dict[str, str] = {}
    if mix_cols:
        as_of_ts = rfm.attrs["as_of"]
        dates = check_dates(tx[date_col], name=f"tx[{date_col!r}]")  # as rfm_table read them
        inside = (dates <= as_of_ts + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)).to_numpy()
        sub = tx.loc[inside, [customer_col, value_col, *mix_cols]]
        positive = sub[value_col].clip(lower=0.0).astype("float64")
        for col in mix_cols:
            mix = positive.groupby([sub[customer_col], sub[col].fillna("missing")], observed=True).sum().unstack(fill_value=0.0)
            total = mix.sum(axis=1)
            mix = mix.div(total.where(total > 0), axis=0).fillna(0.0)
            names = [f"{_slug(col)}_{_slug(v)}_share" for v in mix.columns]
            labels.update({name: str(v) for name, v in zip(names, mix.columns)})
            mix.columns = names
            mix = mix.T.groupby(level=0).sum().T  # values that slug to the same name are merged
            feats = feats.merge(mix, left_on=customer_col, right_index=True, how="left")
    share_cols = [c for c in feats.columns if c.endswith("_share")]
    feats[share_cols] = feats[share_cols].fillna(0.0)
    feats = feats.reset_index(drop=True)
    feats.attrs["feature_labels"] = labels  # share column -> the value it measures, for profile() labels
    return feats


_WORDS = {
    "recency": ("lapsed", "recent buyers"),
    "tenure": ("long-standing", "new customers"),
    "frequency": ("frequent", "infrequent"),
    "monetary": ("high spend", "low spend"),
    "avg_order_value": ("large orders", "small orders"),
    "purchases_per_month": ("buy often", "buy rarely"),
}


def _describe(feature: str, z: float, labels: dict[str, str] | None = None) -> str:
    high = z > 0
    if feature in _WORDS:
        return _WORDS[feature][0 if high else 1]
    if feature.endswith("_share"):
        value = (labels or {}).get(feature) or feature[: -len("_share")].split("_", 1)[-1].replace("_", " ")
        return f"{value}-heavy" if high else f"little {value}"
    return f"{'high' if high else 'low'} {feature.replace('_', ' ')}"


class CustomerClusters:
    """K-means clusters of customers on behavioural features.

    Preprocessing: each feature whose absolute sample skewness exceeds
    ``skew_threshold`` gets a signed log transform ``sign(x) * log1p(|x|)``
    (money and counts are right-skewed; the sign keeps net returns
    negative), then every feature is standardised (mean 0, sd 1; constant
    features stay 0).

    Choosing k: when ``k`` is None each k in ``k_range`` (inclusive) is fitted
    and the one with the highest mean silhouette coefficient wins (ties go to
    the smaller k), computed on a random sample of at most ``sample_size``
    customers to keep it fast. k values with ``k >= n_customers`` are skipped.

    Parameters
    ----------
    k : int, optional
        Number of clusters; None chooses it by silhouette.
    k_range : (int, int)
        Smallest and largest k tried when ``k`` is None.
    random_state : int
        Seed for KMeans and the silhouette sample.
    features : list of str, optional
        Feature columns to use. Default: every numeric column except the id.
    id_col : str
        Customer id column of the features frame.
    sample_size : int
        Customers sampled for the silhouette score.
    skew_threshold : float
        Skewness above which a feature is log-transformed.

    Attributes
    ----------
    k_ : int
        Number of clusters fitted.
    labels_ : DataFrame
        ``id_col``, ``cluster`` (0..k-1, numbered by descending size).
    silhouette_ : DataFrame
        ``k``, ``silhouette``, ``chosen`` (bool); one row per k tried.
    feature_names_ : list of str
    log_features_ : list of str
        Features that were log-transformed.
    centers_ : DataFrame
        ``cluster``, ``feature``, ``z``: each cluster's mean of the
        transformed, standardised feature (0 = the overall mean).
    model_ : sklearn.cluster.KMeans
    """

    def __init__(
        self,
        k: int | None = None,
        k_range: tuple[int, int] = (2, 8),
        random_state: int = 0,
        *,
        features: Sequence[str] | None = None,
        id_col: str = "customer_id",
        sample_size: int = 2000,
        skew_threshold: float = 1.0,
    ) -> None:
        self.k = k
        self.k_range = k_range
        self.random_state = random_state
        self.features = features
        self.id_col = id_col
        self.sample_size = sample_size
        self.skew_threshold = skew_threshold

    # ------------------------------------------------------------------ fitting

    def _matrix(self, features: pd.DataFrame, *, fitting: bool) -> np.ndarray:
        X = features[self.feature_names_].to_numpy(dtype="float64", na_value=np.nan)
        if np.isnan(X).any():
            rows, cols = np.nonzero(np.isnan(X))
            raise SalesplanDataError(
                f"features have {len(rows)} missing value(s), e.g. column "
                f"{self.feature_names_[cols[0]]!r} at row {features.index[rows[0]]!r}; "
                "fill or drop them before clustering."
            )
        if fitting:
            from scipy.stats import skew

            # constant columns make scipy warn about precision loss; their skew is 0 anyway
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                sk = np.nan_to_num(skew(X, axis=0), nan=0.0)
            self._log_mask = np.abs(sk) > self.skew_threshold
            self.log_features_ = [f for f, m in zip(self.feature_names_, self._log_mask) if m]
        X = X.copy()
        X[:, self._log_mask] = np.sign(X[:, self._log_mask]) * np.log1p(np.abs(X[:, self._log_mask]))
        if fitting:
            self._mean = X.mean(axis=0)
            sd = X.std(axis=0)
            self._scale = np.where(sd > 0, sd, 1.0)
        return (X - self._mean) / self._scale

    def fit(self, features: pd.DataFrame) -> CustomerClusters:
        """Fit on a features frame (e.g. from :func:`customer_features`); returns self."""
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score
        from threadpoolctl import threadpool_limits

        check_frame(features, name="features")
        check_columns(features, [self.id_col], name="features",
                      hint=f"Pass id_col= naming the customer column (default {self.id_col!r}).")
        if self.features is None:
            names = [c for c in features.columns if c != self.id_col
                     and pd.api.types.is_numeric_dtype(features[c]) and not pd.api.types.is_bool_dtype(features[c])]
        else:
            names = list(self.features)
            check_columns(features, names, name="features")
        if not names:
            raise SalesplanDataError(
                f"features has no numeric column besides {self.id_col!r}; columns: {list(features.columns)}."
            )
        self.feature_names_ = names
        X = self._matrix(features, fitting=True)
        n = len(X)
        n_distinct = len(np.unique(X, axis=0))
        lo, hi = self.k_range
        if self.k is not None:
            k = check_positive_int(self.k, name="k")
            if k > n:
                raise SalesplanDataError(
                    f"features has {n} customer(s) but k={k} clusters were asked; "
                    f"use k <= {n} or more customers."
                )
            if k > n_distinct:
                raise SalesplanDataError(
                    f"features has only {n_distinct} distinct customer profile(s) (of {n} customers) "
                    f"but k={k} clusters were asked; use k <= {n_distinct}."
                )
            candidates = [k]
        else:
            check_positive_int(lo, name="k_range[0]")
            check_positive_int(hi, name="k_range[1]")
            if lo < 2 or hi < lo:
                raise SalesplanError(f"k_range must be (low, high) with 2 <= low <= high, got {self.k_range!r}.")
            candidates = [k for k in range(lo, hi + 1) if k < n and k <= n_distinct]
            if not candidates:
                raise SalesplanDataError(
                    f"features has {n} customer(s) ({n_distinct} distinct profile(s)), too few for any "
                    f"k in k_range={self.k_range}: the silhouette needs 2 <= k < customers. "
                    "Pass a smaller k_range, a fixed k, or more customers."
                )
        rng = np.random.default_rng(self.random_state)
        sample = rng.choice(n, size=min(n, self.sample_size), replace=False) if n > self.sample_size else None
        fits, scores = {}, []
        for k in candidates:
            # customer tables are small: one thread is faster than OpenMP threads fighting
            # over a busy machine (measured 10-20x on a shared 2-core box)
            with threadpool_limits(limits=1):
                model = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(X)
            fits[k] = model
            labels = model.labels_
            Xs, ls = (X, labels) if sample is None else (X[sample], labels[sample])
            n_found = len(np.unique(ls))
            score = silhouette_score(Xs, ls) if 1 < n_found < len(ls) else np.nan
            scores.append(score)
        sil = pd.DataFrame({"k": candidates, "silhouette": np.asarray(scores, dtype="float64")})
        if self.k is None:
            if sil["silhouette"].isna().all():
                raise SalesplanDataError("no k in k_range gave a usable silhouette score.")
            best = int(sil.loc[sil["silhouette"].idxmax(), "k"])  # idxmax takes the first (smallest k) on ties
        else:
            best = candidates[0]
        sil["chosen"] = sil["k"] == best
        self.silhouette_ = sil
        self.k_ = best
        self.model_ = fits[best]
        # number clusters by size (0 = largest) so that labels are stable and readable
        raw = self.model_.labels_
        counts = np.bincount(raw, minlength=best)
        self._relabel = np.empty(best, dtype=np.int64)
        self._relabel[np.argsort(-counts, kind="stable")] = np.arange(best)
        self.labels_ = pd.DataFrame({self.id_col: features[self.id_col].to_numpy(),
                                     "cluster": self._relabel[raw]})
        self._features = features.reset_index(drop=True)
        self._labels = dict(features.attrs.get("feature_labels", {}))
        self._X = X
        z = pd.DataFrame(X, columns=names).groupby(self.labels_["cluster"].to_numpy()).mean()
        z.index.name = "cluster"
        self.centers_ = z.reset_index().melt(id_vars="cluster", var_name="feature", value_name="z")
        self.centers_["feature"] = self.centers_["feature"].astype("str")
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise SalesplanError("This CustomerClusters is not fitted yet; call fit(features) first.")

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Cluster of each customer in ``features`` (same columns as in fit).

        Returns
        -------
        DataFrame
            ``id_col``, ``cluster``.
        """
        self._check_fitted()
        check_frame(features, name="features")
        check_columns(features, [self.id_col, *self.feature_names_], name="features")
        X = self._matrix(features, fitting=False)
        return pd.DataFrame({self.id_col: features[self.id_col].to_numpy(),
                             "cluster": self._relabel[self.model_.predict(X)]})

    def profile(self, *, value_col: str = "monetary", top: int = 3, min_z: float = 0.25) -> pd.DataFrame:
        """A readable table per cluster.

        What distinguishes a cluster: for each feature, the difference between
        the cluster's mean and the overall mean of the transformed, scaled
        feature (a z-score difference). The ``top`` features with the largest
        absolute difference (at least ``min_z``) are put into words, e.g.
        ``"frequent, online-heavy, high spend"``; a cluster with none is
        ``"average"``.

        Returns
        -------
        DataFrame
            One row per cluster. Columns: ``cluster``, ``label``,
            ``customers``, ``customer_share``, ``revenue_share`` (share of the
            summed ``value_col``; NaN when that column is absent or sums to
            0), ``distinguishing`` (the features and their z differences, as
            text), then ``median_<feature>`` for every feature.
        """
        self._check_fitted()
        labels = self.labels_["cluster"].to_numpy()
        k = self.k_
        z = pd.DataFrame(self._X, columns=self.feature_names_).groupby(labels).mean().reindex(range(k))
        med = self._features[self.feature_names_].groupby(labels).median().reindex(range(k))
        counts = np.bincount(labels, minlength=k)
        rows = []
        revenue = None
        if value_col in self._features.columns:
            revenue = self._features[value_col].groupby(labels).sum().reindex(range(k), fill_value=0.0)
            rev_total = revenue.sum()
        for c in range(k):
            zc = z.loc[c]
            order = zc.abs().sort_values(ascending=False, kind="stable")
            picked = [f for f in order.index[:top] if abs(zc[f]) >= min_z]
            row = {
                "cluster": c,
                "label": ", ".join(_describe(f, zc[f], self._labels) for f in picked) or "average",
                "customers": int(counts[c]),
                "customer_share": counts[c] / len(labels),
                "revenue_share": (revenue[c] / rev_total) if revenue is not None and rev_total else np.nan,
                "distinguishing": "; ".join(f"{f} {zc[f]:+.2f}" for f in picked),
            }
            row.update({f"median_{f}": med.loc[c, f] for f in self.feature_names_})
            rows.append(row)
        out = pd.DataFrame(rows)
        for col in ("label", "distinguishing"):
            out[col] = out[col].astype("str")
        return out

    def summary(self) -> pd.DataFrame:
        """The silhouette score per k tried (``k``, ``silhouette``, ``chosen``)."""
        self._check_fitted()
        return self.silhouette_.copy()

    def __repr__(self) -> str:
        fitted = f", k_={self.k_}" if hasattr(self, "k_") else ""
        return f"CustomerClusters(k={self.k!r}, k_range={self.k_range!r}, random_state={self.random_state!r}{fitted})"
