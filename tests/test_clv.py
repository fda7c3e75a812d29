"""Tests of salesplan.segments.clv: the summary adapter, BG/NBD, Gamma-Gamma and CLV.

Reference tests fit the models from the raw CDNOW sample transactions and
compare with Fader, Hardie and Lee (2005) and Fader and Hardie (2013).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize, special

from salesplan.errors import SalesplanDataError, SalesplanDataWarning, SalesplanError, SalesplanWarning
from salesplan.segments import clv
from salesplan.segments.clv import (
    REPEAT_MODELS,
    BetaGeo,
    GammaGamma,
    ModifiedBetaGeo,
    ParetoNBD,
    calibration_holdout,
    customer_lifetime_value,
    plot_calibration_holdout,
    plot_tracking,
    repeat_model,
    repeat_purchase_tracking,
    select_model,
    summary_from_transactions,
)

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_BG_LOGLIK = -9582.4
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
PUBLISHED_GG_LOGLIK = -4055.92


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture
def small_tx() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "a", "a", "c"],
            "order_date": pd.to_datetime(
                [
                    "2024-01-01", "2024-01-01", "2024-01-15", "2024-01-16",
                    "2024-01-08", "2024-02-05", "2024-02-05", "2024-02-10",
                ]
            ),
            "revenue": [10.0, 5.0, 20.0, 4.0, 7.0, 8.0, 2.0, 3.0],
        }
    )


def _read_cdnow_sample(shared_data) -> pd.DataFrame:
    # The second column (the sample's 1..2357 id) is the ID of the summary files.
    tx = pd.read_csv(
        shared_data / "cdnow" / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "n_cds", "revenue"],
        dtype={"date": str},
    )
    tx["order_date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return tx


@pytest.fixture(scope="module")
def cdnow(request):
    shared_data = request.getfixturevalue("shared_data")
    tx = _read_cdnow_sample(shared_data)
    summary = summary_from_transactions(
        tx,
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        freq="D",
        freq_multiplier=7,
    )
    reference = pd.read_csv(shared_data / "cdnow" / "cdnow_customers_summary_with_transactions.csv")
    bg = BetaGeo().fit(summary)
    gg = GammaGamma().fit(summary)
    return {"tx": tx, "summary": summary, "reference": reference, "bg": bg, "gg": gg}


def _simulate_bgnbd(rng, n, r, alpha, a, b, T, max_purchases=200) -> pd.DataFrame:
    """Customers that follow BG/NBD exactly: Poisson purchases at rate lambda,
    dropping out after each repeat purchase with probability p."""
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    gaps = rng.exponential(1.0, (n, max_purchases)) / lam[:, None]
    times = np.cumsum(gaps, axis=1)
    # Purchases made while alive: the customer dies right after purchase D ~ Geometric(p).
    deaths = rng.geometric(p)
    k = np.arange(1, max_purchases + 1)
    made = (times <= T) & (k[None, :] <= deaths[:, None])
    x = made.sum(axis=1)
    assert x.max() < max_purchases
    recency = np.where(x > 0, times[np.arange(n), np.maximum(x - 1, 0)], 0.0)
    return pd.DataFrame({"customer_id": np.arange(n), "frequency": x, "recency": recency, "T": float(T)})


# ---------------------------------------------------------------------------
# summary_from_transactions
# ---------------------------------------------------------------------------


def test_summary_daily_periods_in_weeks_with_holdout(small_tx):
    before = small_tx.copy()
    out = summary_from_transactions(
        small_tx,
        calibration_end="2024-01-29",
        observation_end="2024-02-26",
        freq="D",
        freq_multiplier=7,
    )
    expected = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "frequency": np.array([2, 0], dtype=np.int64),
            "recency": [15 / 7, 0.0],
            "T": [4.0, 3.0],
            # Same-day purchases are one purchase; the first one is not counted.
            "monetary_value": [12.0, 0.0],
            "frequency_holdout": np.array([1, 0], dtype=np.int64),
            "monetary_value_holdout": [10.0, 0.0],
            "duration_holdout": [4.0, 4.0],
        }
    )
    pdt.assert_frame_equal(out, expected, check_dtype=False)
    assert out["frequency"].dtype == np.int64
    pdt.assert_frame_equal(small_tx, before)  # the caller's frame is untouched


def test_summary_weekly_periods_merge_purchases_of_the_same_week(small_tx):
    out = summary_from_transactions(small_tx, calibration_end="2024-01-29", freq="W")
    # 2024-01-15 and -16 fall in the same Monday-Sunday week: one purchase worth 24.
    expected = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "frequency": np.array([1, 0], dtype=np.int64),
            "recency": [2.0, 0.0],
            "T": [4.0, 3.0],
            "monetary_value": [24.0, 0.0],
        }
    )
    pdt.assert_frame_equal(out, expected, check_dtype=False)


def test_summary_defaults_and_options(small_tx):
    # calibration_end defaults to the last purchase: customer c enters with T = 0.
    out = summary_from_transactions(small_tx, freq="D", value_col=None)
    assert list(out.columns) == ["customer_id", "frequency", "recency", "T"]
    assert out.set_index("customer_id").loc["c", "T"] == 0
    assert out.set_index("customer_id").loc["a", "frequency"] == 3
    # Renaming the columns changes nothing but the key's name.
    renamed = small_tx.rename(columns={"customer_id": "account", "order_date": "day", "revenue": "usd"})
    a = summary_from_transactions(small_tx, calibration_end="2024-01-29")
    b = summary_from_transactions(
        renamed, customer_col="account", date_col="day", value_col="usd", calibration_end="2024-01-29"
    )
    pdt.assert_frame_equal(a, b.rename(columns={"account": "customer_id"}))
    # Shuffling rows changes nothing; order lines stamped later in the day still count.
    shuffled = small_tx.sample(frac=1.0, random_state=1)
    pdt.assert_frame_equal(summary_from_transactions(shuffled, calibration_end="2024-01-29"), a)
    timed = small_tx.assign(order_date=small_tx["order_date"] + pd.Timedelta(hours=15))
    pdt.assert_frame_equal(summary_from_transactions(timed, calibration_end="2024-01-29"), a)


def test_summary_single_purchase_customers_and_refunds():
    tx = pd.DataFrame(
        {
            "customer_id": [1, 2, 2, 3],
            "order_date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-20", "2024-01-03"]),
            "revenue": [5.0, 10.0, -10.0, 7.0],
        }
    )
    out = summary_from_transactions(tx, calibration_end="2024-01-31", freq="D")
    assert out["frequency"].tolist() == [0, 1, 0]
    assert out["monetary_value"].tolist() == [0.0, -10.0, 0.0]
    assert out["recency"].tolist() == [0.0, 18.0, 0.0]


@pytest.mark.parametrize(
    ("change", "kwargs", "error", "match"),
    [
        (lambda d: d.drop(columns="order_date"), {}, SalesplanDataError, r"missing required column\(s\) 'order_date'"),
        (lambda d: d.rename(columns={"revenue": "Revenue"}), {}, SalesplanDataError, r"'revenue' \(closest: 'Revenue'\)"),
        (lambda d: d.assign(customer_id=None), {}, SalesplanDataError, r"none of the 8 lines has a customer in 'customer_id'"),
        (lambda d: d.assign(order_date=[pd.NaT, pd.NaT] + list(d["order_date"][2:])), {}, SalesplanDataError, r"2 missing date\(s\) in 'order_date' \(rows 0, 1\)"),
        (lambda d: d.assign(revenue=[np.nan] + list(d["revenue"][1:])), {}, SalesplanDataError, r"1 missing or infinite value\(s\) in 'revenue' \(row 0\)"),
        (lambda d: d.assign(revenue=d["revenue"].astype(str)), {}, SalesplanDataError, r"'revenue' must be numeric"),
        (lambda d: d.assign(order_date=["not a date"] * len(d)), {}, SalesplanDataError, r"could not be read as dates"),
        (lambda d: d, {"calibration_end": "2023-12-01"}, SalesplanError, r"calibration_end 2023-12-01 is before the first purchase in the data \(2024-01-01\)"),
        (lambda d: d, {"calibration_end": "2024-01-29", "observation_end": "2024-01-10"}, SalesplanError, r"observation_end 2024-01-10 is before calibration_end 2024-01-29"),
        (lambda d: d, {"freq": "fortnight"}, SalesplanError, r"freq must be a pandas period alias .* got 'fortnight'"),
        (lambda d: d, {"freq_multiplier": 0}, SalesplanError, r"freq_multiplier must be a positive number, got 0"),
        (lambda d: d, {"calibration_end": "someday"}, SalesplanError, r"calibration_end must be a date"),
        (lambda d: d.assign(order_date=d["order_date"] + pd.Timedelta(hours=10)), {"calibration_end": "2024-01-01 08:00"}, SalesplanError, r"calibration_end 2024-01-01 08:00:00 is before the first purchase in the data \(2024-01-01 10:00:00\)"),
        (lambda d: d.iloc[:0], {}, SalesplanDataError, r"transactions has 0 row\(s\)"),
    ],
)
@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_summary_bad_input(small_tx, change, kwargs, error, match):
    with pytest.raises(error, match=match):
        summary_from_transactions(change(small_tx), **kwargs)


def test_summary_rejects_non_frames():
    with pytest.raises(SalesplanError, match="transactions must be a pandas DataFrame, got ndarray"):
        summary_from_transactions(np.zeros((3, 3)))


# ---------------------------------------------------------------------------
# Reference results: CDNOW (Fader, Hardie and Lee 2005; Fader and Hardie 2013)
# ---------------------------------------------------------------------------


@pytest.mark.reference
def test_cdnow_adapter_matches_published_summary(cdnow):
    summary, ref = cdnow["summary"], cdnow["reference"]
    assert len(summary) == 2357
    both = summary.merge(ref, left_on="customer_id", right_on="ID", validate="1:1", suffixes=("", "_ref"))
    assert len(both) == 2357
    np.testing.assert_array_equal(both["frequency"], both["x"])
    # The file rounds days / 7 to 2 decimals.
    np.testing.assert_allclose(both["recency"], both["t_x"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(both["T"], both["T_ref"], atol=0.005 + 1e-9)
    np.testing.assert_allclose(both["monetary_value"], both["zbar"], atol=0.005 + 1e-9)
    assert (summary["duration_holdout"] == 39).all()


@pytest.mark.reference
def test_cdnow_bgnbd_matches_published_parameters(cdnow):
    bg = cdnow["bg"]
    for name, value in PUBLISHED_BG.items():
        assert abs(bg.params_[name] - value) < 0.001, (name, bg.params_[name])
    assert abs(bg.loglik_ - PUBLISHED_BG_LOGLIK) < 0.1
    assert bg.n_customers_ == 2357 and bg.n_repeat_customers_ == 946


@pytest.mark.reference
def test_cdnow_bgnbd_from_published_summary_file(cdnow):
    ref = cdnow["reference"].rename(columns={"x": "frequency", "t_x": "recency"})
    bg = BetaGeo().fit(ref)
    for name, value in PUBLISHED_BG.items():
        assert abs(bg.params_[name] - value) < 0.001, (name, bg.params_[name])
    assert abs(bg.loglik_ - PUBLISHED_BG_LOGLIK) < 0.1


@pytest.mark.reference
def test_cdnow_gamma_gamma_matches_published_parameters(cdnow):
    # From our adapter's mean repeat spend ...
    gg = cdnow["gg"]
    assert gg.n_customers_ == 946 and gg.n_excluded_ == 0
    for name, value in PUBLISHED_GG.items():
        assert abs(gg.params_[name] - value) < 0.01, (name, gg.params_[name])
    assert abs(gg.loglik_ - PUBLISHED_GG_LOGLIK) < 0.05
    # ... and from the published zbar.
    ref = cdnow["reference"].rename(columns={"x": "frequency", "zbar": "monetary_value"})
    gg_ref = GammaGamma().fit(ref)
    for name, value in PUBLISHED_GG.items():
        assert abs(gg_ref.params_[name] - value) < 0.01, (name, gg_ref.params_[name])
    assert abs(gg_ref.loglik_ - PUBLISHED_GG_LOGLIK) < 0.01


@pytest.mark.reference
def test_cdnow_summary_tables_and_standard_errors(cdnow):
    table = cdnow["bg"].summary()
    assert list(table.columns) == ["parameter", "estimate", "std_error", "lower_95", "upper_95"]
    assert table["parameter"].tolist() == ["r", "alpha", "a", "b"]
    assert (table["std_error"] > 0).all()
    assert ((table["lower_95"] < table["estimate"]) & (table["estimate"] < table["upper_95"])).all()
    # Independent check of the gradient-based Hessian: second differences of the log-likelihood.
    bg = cdnow["bg"]
    data = clv._BGData(
        *(cdnow["summary"][c].to_numpy(dtype=float) for c in ["frequency", "recency", "T"])
    )
    params = bg.params_.to_numpy()
    h = 1e-4 * params
    ll = lambda p: clv._bg_loglik(p, data, 0)[0]  # noqa: E731
    hess = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            ei, ej = np.eye(4)[i] * h[i], np.eye(4)[j] * h[j]
            hess[i, j] = (ll(params + ei + ej) - ll(params + ei - ej) - ll(params - ei + ej) + ll(params - ei - ej)) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    np.testing.assert_allclose(table["std_error"], se, rtol=1e-3)
    gg_table = cdnow["gg"].summary()
    assert gg_table["parameter"].tolist() == ["p", "q", "gamma"]
    assert (gg_table["std_error"] > 0).all()


@pytest.mark.reference
def test_cdnow_calibration_holdout(cdnow):
    summary = cdnow["summary"]
    table = calibration_holdout(cdnow["bg"], summary)
    assert table["frequency"].tolist() == list(range(8))
    assert table["frequency_label"].tolist() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert table["n_customers"].sum() == 2357
    assert table.loc[0, "n_customers"] == 1411  # the 1,411 customers without repeat purchases
    # Actual holdout purchases are the adapter's counts.
    pdt.assert_series_equal(
        table.set_index("frequency")["actual_mean"],
        summary.groupby(summary["frequency"].clip(upper=7))["frequency_holdout"].mean(),
        check_names=False,
    )
    # The model tracks the holdout: it predicts 1,653 of the 1,882 purchase days
    # (12% under), the gap the paper's conditional-expectation chart shows too.
    actual = (table["actual_mean"] * table["n_customers"]).sum()
    predicted = (table["predicted_mean"] * table["n_customers"]).sum()
    assert actual == summary["frequency_holdout"].sum() == 1882
    assert 0.85 < predicted / actual < 1.0
    assert table["predicted_mean"].is_monotonic_increasing
    fig = plot_calibration_holdout(table)
    assert [t.name for t in fig.data] == ["actual", "BG/NBD"]
    assert list(fig.data[1].y) == pytest.approx(table["predicted_mean"].tolist())


@pytest.mark.reference
def test_cdnow_customer_lifetime_value(cdnow):
    bg, gg, summary = cdnow["bg"], cdnow["gg"], cdnow["summary"]
    out = customer_lifetime_value(bg, gg, summary, horizon=12, freq="W", discount_rate=0.01)
    assert list(out.columns) == ["customer_id", "expected_purchases", "expected_spend", "clv"]
    pdt.assert_index_equal(out.index, summary.index)
    assert (out["clv"] >= 0).all()
    # Monthly loop as lifetimes writes it, with our months of 365.25 / 12 days.
    factor = 365.25 / 12 / 7
    spend = gg.expected_spend(summary)["expected_spend"].to_numpy()
    expected = np.zeros(len(summary))
    for month in range(1, 13):
        upto = bg.predict_purchases(summary, month * factor)["expected_purchases"].to_numpy()
        before = bg.predict_purchases(summary, (month - 1) * factor)["expected_purchases"].to_numpy()
        expected += spend * (upto - before) / 1.01**month
    np.testing.assert_allclose(out["clv"], expected, rtol=1e-10)
    # Without discounting it is expected purchases over the year times expected spend.
    flat = customer_lifetime_value(bg, gg, summary, discount_rate=0.0)
    np.testing.assert_allclose(flat["clv"], flat["expected_purchases"] * flat["expected_spend"], rtol=1e-10)
    assert (flat["clv"] >= out["clv"]).all()


@pytest.mark.reference
@pytest.mark.parametrize(("freq", "multiplier"), [("D", 7), ("W", 1)])
def test_cdnow_tracking_adds_up_to_the_summary(cdnow, freq, multiplier):
    kw = {"calibration_end": "1997-09-30", "observation_end": "1998-06-30", "freq": freq, "freq_multiplier": multiplier}
    summary = summary_from_transactions(cdnow["tx"], **kw)
    bg = cdnow["bg"] if freq == "D" else BetaGeo().fit(summary)
    track = repeat_purchase_tracking(bg, cdnow["tx"], **kw)
    assert list(track.columns) == [
        "period", "t", "holdout", "actual", "expected", "actual_cumulative", "expected_cumulative"
    ]
    assert track["period"].iloc[0] == pd.Timestamp("1997-01-01").to_period(freq).start_time
    assert track["period"].iloc[-1] == pd.Timestamp("1998-06-30").to_period(freq).start_time
    at_end = track.loc[track["t"] == 0].iloc[0]
    # The period holding calibration_end also holds the holdout purchases made
    # later in it (none with daily periods; Oct 1-5 1997 with weekly ones).
    tx = cdnow["tx"]
    week_end = pd.Timestamp("1997-09-30").to_period(freq).end_time
    late = tx[(tx["order_date"] > "1997-09-30") & (tx["order_date"] <= week_end)]
    late = late[late["customer_id"].isin(summary["customer_id"])]["customer_id"].nunique()
    assert (late == 0) == (freq == "D")
    assert at_end["actual_cumulative"] == summary["frequency"].sum() + late
    assert track["actual"].sum() == summary["frequency"].sum() + summary["frequency_holdout"].sum()
    # The expectation at the calibration end is the sum over customers of E[X(T_i)].
    new = summary.assign(frequency=0, recency=0.0, T=0.0)
    expected = bg.predict_purchases(new, summary["T"].to_numpy())["expected_purchases"].sum()
    assert at_end["expected_cumulative"] == pytest.approx(expected, rel=1e-10)
    assert track["expected"].ge(-1e-9).all()
    np.testing.assert_allclose(track["expected"].cumsum(), track["expected_cumulative"], rtol=1e-10)
    fig = plot_tracking(track, cumulative=False)
    assert [t.name for t in fig.data] == ["actual", "BG/NBD"]


# ---------------------------------------------------------------------------
# Likelihood, fitting and predictions on simulated data
# ---------------------------------------------------------------------------


def test_bgnbd_gradient_is_the_derivative_of_the_loglik(rng):
    sim = _simulate_bgnbd(rng, 400, 0.5, 5.0, 0.8, 2.5, T=30.0)
    data = clv._BGData(*(sim[c].to_numpy(dtype=float) for c in ["frequency", "recency", "T"]))
    for params in ([0.5, 5.0, 0.8, 2.5], [2.0, 1.0, 3.0, 0.7]):
        params = np.array(params)
        numeric = optimize.approx_fprime(params, lambda p: clv._bg_loglik(p, data, 0)[0], 1e-7)
        np.testing.assert_allclose(clv._bg_loglik(params, data)[1], numeric, rtol=1e-4, atol=1e-3)


def _jacobian_of_gradient(grad, point):
    out = np.empty((len(point), len(point)))
    for j in range(len(point)):
        h = 1e-6 * point[j]
        up, down = point.copy(), point.copy()
        up[j] += h
        down[j] -= h
        out[:, j] = (grad(up) - grad(down)) / (2 * h)
    return out


def test_bgnbd_hessian_is_the_derivative_of_the_gradient(rng):
    sim = _simulate_bgnbd(rng, 400, 0.5, 5.0, 0.8, 2.5, T=30.0)
    data = clv._BGData(*(sim[c].to_numpy(dtype=float) for c in ["frequency", "recency", "T"]))
    for params in ([0.5, 5.0, 0.8, 2.5], [2.0, 1.0, 3.0, 0.7]):
        params = np.array(params)
        hess = clv._bg_loglik(params, data, 2)[2]
        numeric = _jacobian_of_gradient(lambda p: clv._bg_loglik(p, data)[1], params)
        np.testing.assert_allclose(hess, numeric, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(hess, hess.T)


def test_bgnbd_loglik_matches_the_paper_formula(rng):
    sim = _simulate_bgnbd(rng, 300, 0.5, 5.0, 0.8, 2.5, T=30.0)
    x, tx, T = (sim[c].to_numpy(dtype=float) for c in ["frequency", "recency", "T"])
    r, alpha, a, b = 0.5, 5.0, 0.8, 2.5
    # Eq. 6 of Fader, Hardie and Lee (2005), written out directly.
    a1 = special.gamma(r + x) * alpha**r / special.gamma(r)
    a2 = special.beta(a, b + x) / special.beta(a, b)
    a3 = (1 / (alpha + T)) ** (r + x)
    a4 = np.where(x > 0, a / (b + x - 1) / (alpha + tx) ** (r + x), 0.0)
    direct = np.log(a1 * a2 * (a3 + a4)).sum()
    ours = clv._bg_loglik(np.array([r, alpha, a, b]), clv._BGData(x, tx, T), 0)[0]
    assert ours == pytest.approx(direct, rel=1e-10)


def test_bgnbd_recovers_simulated_parameters(rng):
    truth = {"r": 0.6, "alpha": 4.0, "a": 1.5, "b": 4.0}
    sim = _simulate_bgnbd(rng, 6000, *truth.values(), T=52.0)
    model = BetaGeo().fit(sim)
    table = model.summary().set_index("parameter")
    for name, value in truth.items():
        z = (table.loc[name, "estimate"] - value) / table.loc[name, "std_error"]
        assert abs(z) < 3.5, (name, table.loc[name].to_dict())
    assert np.isfinite(model.loglik_) and model.n_iter_ > 0
    # Refitting the same data gives the same answer.
    pdt.assert_series_equal(BetaGeo().fit(sim).params_, model.params_)


def test_gamma_gamma_gradient_and_recovery(rng):
    p, q, gamma = 6.0, 4.0, 15.0
    n = 4000
    nu = rng.gamma(q, 1.0 / gamma, n)
    x = rng.integers(1, 10, n)
    spend = np.array([rng.gamma(p, 1.0 / v, k).mean() for v, k in zip(nu, x)])
    summary = pd.DataFrame({"frequency": x, "monetary_value": spend})
    model = GammaGamma().fit(summary)
    table = model.summary().set_index("parameter")
    for name, value in {"p": p, "q": q, "gamma": gamma}.items():
        z = (table.loc[name, "estimate"] - value) / table.loc[name, "std_error"]
        assert abs(z) < 3.5, (name, table.loc[name].to_dict())
    xs, ms = x.astype(float), spend
    xu, cu = np.unique(xs, return_counts=True)
    consts = {"xu": xu, "cu": cu.astype(float), "n": float(n),
              "sum_x_logm_logx": float(np.dot(xs, np.log(ms) + np.log(xs))), "sum_logm": float(np.log(ms).sum())}
    point = np.array([5.0, 3.0, 12.0])
    numeric = optimize.approx_fprime(point, lambda prm: clv._gg_loglik(prm, xs, ms, consts, 0)[0], 1e-7)
    _, grad, hess = clv._gg_loglik(point, xs, ms, consts, 2)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(hess, _jacobian_of_gradient(lambda prm: clv._gg_loglik(prm, xs, ms, consts)[1], point), rtol=1e-5, atol=1e-6)


def test_penalizer_shrinks_parameters(rng):
    sim = _simulate_bgnbd(rng, 1500, 0.6, 4.0, 1.5, 4.0, T=52.0)
    plain = BetaGeo().fit(sim)
    shrunk = BetaGeo(penalizer=0.01).fit(sim)
    assert (shrunk.params_**2).sum() < (plain.params_**2).sum()
    assert shrunk.loglik_ < plain.loglik_


def test_predictions_have_the_documented_shape_and_limits():
    model = BetaGeo.from_params(**PUBLISHED_BG)
    summary = pd.DataFrame(
        {"customer_id": ["x", "y", "z"], "frequency": [0, 3, 3], "recency": [0.0, 30.0, 2.0], "T": [39.0, 39.0, 39.0]},
        index=[10, 20, 30],
    )
    alive = model.probability_alive(summary)
    assert list(alive.columns) == ["customer_id", "probability_alive"]
    pdt.assert_index_equal(alive.index, summary.index)
    assert alive.loc[10, "probability_alive"] == 1.0  # never bought again: cannot have dropped out
    assert alive.loc[20, "probability_alive"] > alive.loc[30, "probability_alive"]
    zero = model.predict_purchases(summary, 0)
    assert (zero["expected_purchases"] == 0).all()
    ahead = model.predict_purchases(summary, 39)
    assert ahead.loc[20, "expected_purchases"] > ahead.loc[30, "expected_purchases"]
    per_customer = model.predict_purchases(summary, [1.0, 2.0, 3.0])
    assert per_customer["expected_purchases"].gt(0).all()
    # Population E[X(t)] is the prediction for a customer just acquired (x = t_x = T = 0),
    # and the closed form of the paper (eq. 9) without Euler's transformation.
    pop = model.expected_repeat_purchases([0.0, 10.0, 39.0, 78.0])
    assert list(pop.columns) == ["t", "expected_purchases"]
    new = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
    assert pop.loc[2, "expected_purchases"] == pytest.approx(
        model.predict_purchases(new, 39.0)["expected_purchases"].iloc[0], rel=1e-12
    )
    r, alpha, a, b = PUBLISHED_BG.values()
    t = 39.0
    eq9 = (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    assert pop.loc[2, "expected_purchases"] == pytest.approx(eq9, rel=1e-10)
    # Eq. 10 directly (moderate x keeps the untransformed 2F1 accurate).
    x, tx, T = 3.0, 30.0, 39.0
    z = t / (alpha + T + t)
    eq10 = (
        (a + b + x - 1) / (a - 1)
        * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * special.hyp2f1(r + x, b + x, a + b + x - 1, z))
        / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))
    )
    assert ahead.loc[20, "expected_purchases"] == pytest.approx(eq10, rel=1e-10)


def test_heavy_buyers_stay_finite():
    model = BetaGeo.from_params(**PUBLISHED_BG)
    summary = pd.DataFrame({"frequency": [300, 300], "recency": [38.9, 1.0], "T": [39.0, 39.0]})
    pred = model.predict_purchases(summary, 52)["expected_purchases"]
    assert np.isfinite(pred).all()
    assert pred.iloc[0] > 100 and pred.iloc[1] == pytest.approx(0.0, abs=1e-12)
    alive = model.probability_alive(summary)["probability_alive"]
    assert alive.iloc[1] == pytest.approx(0.0, abs=1e-12)


def test_expected_spend_shrinks_towards_the_population_mean():
    gg = GammaGamma.from_params(**PUBLISHED_GG)
    p, q, gamma = PUBLISHED_GG.values()
    population = p * gamma / (q - 1)
    summary = pd.DataFrame({"customer_id": [1, 2, 3], "frequency": [0, 1, 20], "monetary_value": [0.0, 100.0, 100.0]})
    out = gg.expected_spend(summary)
    assert list(out.columns) == ["customer_id", "expected_spend"]
    assert out["expected_spend"].iloc[0] == pytest.approx(population)
    assert population < out["expected_spend"].iloc[1] < out["expected_spend"].iloc[2] < 100
    weight = p * 1 / (p * 1 + q - 1)
    assert out["expected_spend"].iloc[1] == pytest.approx((1 - weight) * population + weight * 100)
    refund = pd.DataFrame({"frequency": [2], "monetary_value": [-5.0]})
    with pytest.warns(SalesplanDataWarning, match=r"1 repeat buyer\(s\) have a zero or negative monetary_value"):
        assert gg.expected_spend(refund)["expected_spend"].iloc[0] == pytest.approx(population)


# ---------------------------------------------------------------------------
# Bad input to the models
# ---------------------------------------------------------------------------


def test_bgnbd_without_repeat_buyers_is_a_clear_error():
    summary = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0, 0.0, 0.0], "T": [5.0, 3.0, 1.0]})
    with pytest.raises(SalesplanDataError, match=r"no repeat buyers: frequency is 0 for all 3 customer\(s\)"):
        BetaGeo().fit(summary)


@pytest.mark.parametrize(
    ("summary", "match"),
    [
        (pd.DataFrame({"frequency": [1], "T": [3.0]}), r"missing required column\(s\) 'recency'"),
        (pd.DataFrame({"frequency": [1, np.nan], "recency": [1.0, 0.0], "T": [3.0, 3.0]}), r"1 missing or infinite value\(s\) in 'frequency' \(row 1\)"),
        (pd.DataFrame({"frequency": [1, -1], "recency": [1.0, 0.0], "T": [3.0, 3.0]}), r"1 negative value\(s\) in 'frequency' \(row 1"),
        (pd.DataFrame({"frequency": [1.5], "recency": [1.0], "T": [3.0]}), r"non-integer frequency"),
        (pd.DataFrame({"frequency": [1, 2], "recency": [1.0, 5.0], "T": [3.0, 3.0]}), r"1 customer\(s\) with recency greater than T \(row 1\)"),
        (pd.DataFrame({"frequency": [1], "recency": [0.0], "T": [0.0]}), r"T = 0 for all 1 customer\(s\)"),
    ],
)
def test_bgnbd_bad_summary(summary, match):
    with pytest.raises(SalesplanDataError, match=match):
        BetaGeo().fit(summary)


def test_models_must_be_fitted_and_settings_checked():
    summary = pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [3.0], "monetary_value": [2.0]})
    with pytest.raises(SalesplanError, match=r"This BetaGeo is not fitted yet; call fit\(summary\) first"):
        BetaGeo().probability_alive(summary)
    with pytest.raises(SalesplanError, match="This GammaGamma is not fitted yet"):
        GammaGamma().summary()
    with pytest.raises(SalesplanError, match="penalizer must be a number >= 0, got -1"):
        BetaGeo(penalizer=-1).fit(summary)
    with pytest.raises(SalesplanError, match=r"t must be a finite time >= 0"):
        BetaGeo.from_params(**PUBLISHED_BG).predict_purchases(summary, -1)
    with pytest.raises(SalesplanError, match=r"needs exactly the parameters \['p', 'q', 'gamma'\]"):
        GammaGamma.from_params(p=1.0, q=2.0)
    with pytest.raises(SalesplanError, match="q = 0.5 <= 1"):
        GammaGamma.from_params(p=1.0, q=0.5, gamma=1.0).expected_spend(summary)


def test_gamma_gamma_excludes_non_positive_spend_with_a_counted_warning(rng):
    x = rng.integers(1, 6, 300)
    m = rng.gamma(4.0, 5.0, 300)
    m[:3] = [0.0, -2.0, -10.0]
    summary = pd.DataFrame({"frequency": np.r_[x, 0], "monetary_value": np.r_[m, 0.0]})
    with pytest.warns(SalesplanDataWarning, match=r"left out 3 of 300 repeat buyer\(s\) whose monetary_value is zero or negative \(rows 0, 1, 2\)"):
        model = GammaGamma().fit(summary)
    assert model.n_customers_ == 297 and model.n_excluded_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = GammaGamma().fit(summary.iloc[3:])
    pdt.assert_series_equal(again.params_, model.params_)


def test_gamma_gamma_without_positive_repeat_spend_is_a_clear_error():
    only_refunds = pd.DataFrame({"frequency": [1, 2, 0], "monetary_value": [-1.0, 0.0, 0.0]})
    with pytest.raises(SalesplanDataError, match=r"all 2 repeat buyer\(s\) have a zero or negative monetary_value"):
        GammaGamma().fit(only_refunds)
    nobody = pd.DataFrame({"frequency": [0, 0], "monetary_value": [0.0, 0.0]})
    with pytest.raises(SalesplanDataError, match=r"no customer has a repeat purchase \(frequency is 0 for all 2\)"):
        GammaGamma().fit(nobody)


def test_clv_and_holdout_check_their_inputs():
    bg = BetaGeo.from_params(**PUBLISHED_BG)
    gg = GammaGamma.from_params(**PUBLISHED_GG)
    summary = pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [3.0], "monetary_value": [2.0]})
    with pytest.raises(SalesplanError, match=r"freq must be one of \['D', 'W', 'M'\], got 'Y'"):
        customer_lifetime_value(bg, gg, summary, freq="Y")
    with pytest.raises(SalesplanError, match="horizon must be an integer >= 1, got 0"):
        customer_lifetime_value(bg, gg, summary, horizon=0)
    with pytest.raises(SalesplanError, match="gg must be a fitted GammaGamma, got BetaGeo"):
        customer_lifetime_value(bg, bg, summary)
    with pytest.raises(SalesplanDataError, match=r"calibration_holdout needs a holdout period, and this summary has none \(missing required column\(s\) 'frequency_holdout', 'duration_holdout'\)"):
        calibration_holdout(bg, summary)
    with pytest.raises(SalesplanDataError, match="Pass the output of calibration_holdout"):
        plot_calibration_holdout(summary)
    with pytest.raises(SalesplanError, match=r"bgnbd must be a fitted BetaGeo, ModifiedBetaGeo or ParetoNBD \(a repeat-purchase model\), got GammaGamma"):
        repeat_purchase_tracking(gg, pd.DataFrame())
    with pytest.raises(SalesplanError, match="This BetaGeo is not fitted yet"):
        repeat_purchase_tracking(BetaGeo(), pd.DataFrame())
    refund = summary.assign(monetary_value=-3.0)
    with pytest.warns(SalesplanDataWarning, match=r"1 repeat buyer\(s\) have a zero or negative monetary_value") as record:
        customer_lifetime_value(bg, gg, refund)
    assert record[0].filename == __file__  # the warning points at the caller's line
    monthly = customer_lifetime_value(bg, gg, summary, freq="M", horizon=2, discount_rate=0.0)
    two = bg.predict_purchases(summary, 2.0)["expected_purchases"].iloc[0]
    assert monthly["expected_purchases"].iloc[0] == pytest.approx(two)


# ---------------------------------------------------------------------------
# Invariants
# ---------------------------------------------------------------------------

_params = st.fixed_dictionaries(
    {
        "r": st.floats(0.05, 5.0),
        "alpha": st.floats(0.1, 50.0),
        "a": st.floats(0.1, 5.0).filter(lambda v: abs(v - 1) > 0.01),
        "b": st.floats(0.1, 10.0),
    }
)


@st.composite
def _customers(draw):
    T = draw(st.floats(0.0, 100.0))
    x = draw(st.integers(0, 60))
    tx = draw(st.floats(0.0, 1.0)) * T if x > 0 else 0.0
    return x, tx, T


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_params, customer=_customers(), t1=st.floats(0.0, 200.0), t2=st.floats(0.0, 200.0))
def test_probability_alive_in_unit_interval_and_purchases_increase_with_t(params, customer, t1, t2):
    model = BetaGeo.from_params(**params)
    x, tx, T = customer
    summary = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    alive = model.probability_alive(summary)["probability_alive"].iloc[0]
    assert 0.0 <= alive <= 1.0
    lo, hi = sorted((t1, t2))
    e_lo = model.predict_purchases(summary, lo)["expected_purchases"].iloc[0]
    e_hi = model.predict_purchases(summary, hi)["expected_purchases"].iloc[0]
    assert np.isfinite(e_lo) and np.isfinite(e_hi)
    assert 0.0 <= e_lo <= e_hi * (1 + 1e-9) + 1e-12


@st.composite
def _transactions(draw):
    n = draw(st.integers(1, 40))
    customers = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    values = draw(st.lists(st.floats(0.01, 1000.0), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "customer_id": customers,
            "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"),
            "revenue": values,
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx=_transactions(), seed=st.integers(0, 2**16))
def test_summary_invariants(tx, seed):
    out = summary_from_transactions(tx, calibration_end="2024-04-30", freq="D")
    days = tx.groupby("customer_id")["order_date"].nunique()
    pdt.assert_series_equal(
        out.set_index("customer_id")["frequency"], (days - 1).astype(np.int64), check_names=False
    )
    assert ((0 <= out["recency"]) & (out["recency"] <= out["T"])).all()
    assert ((out["monetary_value"] > 0) == (out["frequency"] > 0)).all()
    # Row order does not matter.
    shuffled = tx.sample(frac=1.0, random_state=seed)
    pdt.assert_frame_equal(summary_from_transactions(shuffled, calibration_end="2024-04-30", freq="D"), out)


# ---------------------------------------------------------------------------
# Guest lines (no customer)
# ---------------------------------------------------------------------------


def _with_guests(small_tx: pd.DataFrame) -> pd.DataFrame:
    guests = pd.DataFrame(
        {
            "customer_id": [None, np.nan, "", "  "],
            "order_date": pd.to_datetime(["2024-01-02", "2024-01-20", "2024-02-01", "2024-02-06"]),
            "revenue": [100.0, 200.0, 300.0, 400.5],
        }
    )
    return pd.concat([small_tx, guests], ignore_index=True).sample(frac=1.0, random_state=3)


def _one_warning(record) -> str:
    messages = [str(w.message) for w in record if issubclass(w.category, SalesplanDataWarning)]
    assert len(messages) == 1, messages
    return messages[0]


def test_guest_lines_are_left_out_of_the_summary_with_one_counted_warning(small_tx):
    tx = _with_guests(small_tx)
    before = tx.copy()
    kw = {"calibration_end": "2024-01-29", "observation_end": "2024-02-26", "freq": "D"}
    with pytest.warns(SalesplanDataWarning) as record:
        out = summary_from_transactions(tx, **kw)
    message = _one_warning(record)
    assert message.startswith("summary_from_transactions: left out 4 lines (1,000 revenue) without a customer")
    assert record[0].filename == __file__
    pdt.assert_frame_equal(out, summary_from_transactions(small_tx, **kw))
    assert out["customer_id"].notna().all() and "nan" not in set(out["customer_id"].astype(str))
    pdt.assert_frame_equal(tx, before)
    with pytest.warns(SalesplanDataWarning, match=r"repeat_purchase_tracking: left out 4 lines \(1,000 revenue\)") as record:
        track = repeat_purchase_tracking(BetaGeo.from_params(**PUBLISHED_BG), tx, **kw)
    _one_warning(record)
    pdt.assert_frame_equal(track, repeat_purchase_tracking(BetaGeo.from_params(**PUBLISHED_BG), small_tx, **kw))


def test_categorical_customers_with_missing_values(small_tx):
    tx = _with_guests(small_tx).iloc[:-2]  # NaN and None only: categoricals keep no blank strings
    tx = tx.assign(customer_id=tx["customer_id"].astype("category"))
    with pytest.warns(SalesplanDataWarning, match=r"left out \d+ lines? \(\d[\d,]* revenue\) without a customer"):
        out = summary_from_transactions(tx, calibration_end="2024-01-29", freq="D")
    assert out["customer_id"].astype(str).tolist() == ["a", "b"]


# ---------------------------------------------------------------------------
# MBG/NBD and Pareto/NBD
# ---------------------------------------------------------------------------

PUBLISHED_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PUBLISHED_PARETO_LOGLIK = -9595.0
# BTYDplus (Platzer) on the same 39-week CDNOW summary, as lifetimes' tests use.
PUBLISHED_MBG = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}

# Gauss-Legendre nodes on (0, 1): mixing integrals over quantiles of the
# mixing distributions, E[h(lambda)] = int_0^1 h(F^-1(u)) du, need no densities.
_U, _W = np.polynomial.legendre.leggauss(400)
_U, _W = (_U + 1) / 2, _W / 2


def _mix(fn, lam, other):
    return np.einsum("i,j,ij->", _W, _W, fn(lam[:, None], other[None, :]))


@pytest.fixture(scope="module")
def cdnow_models(cdnow):
    summary = cdnow["summary"]
    return {"mbg": ModifiedBetaGeo().fit(summary), "pareto": ParetoNBD().fit(summary)}


@pytest.mark.reference
def test_cdnow_pareto_nbd_matches_published_parameters(cdnow, cdnow_models):
    model = cdnow_models["pareto"]
    for name, value in PUBLISHED_PARETO.items():
        assert abs(model.params_[name] - value) < 0.001, (name, model.params_[name])
    assert abs(model.loglik_ - PUBLISHED_PARETO_LOGLIK) < 0.05
    assert model.n_customers_ == 2357 and model.n_repeat_customers_ == 946
    table = model.summary()
    assert table["parameter"].tolist() == ["r", "alpha", "s", "beta"]
    assert (table["std_error"] > 0).all()
    # From the published summary file too, whose times are rounded to 2 decimals:
    # its optimum has beta = 11.6679, 0.0011 from the published value.
    ref = cdnow["reference"].rename(columns={"x": "frequency", "t_x": "recency"})
    again = ParetoNBD().fit(ref)
    for name, value in PUBLISHED_PARETO.items():
        assert abs(again.params_[name] - value) < 0.002, (name, again.params_[name])
    assert abs(again.loglik_ - PUBLISHED_PARETO_LOGLIK) < 0.05


@pytest.mark.reference
def test_cdnow_mbg_nbd_matches_published_parameters(cdnow_models):
    model = cdnow_models["mbg"]
    for name, value in PUBLISHED_MBG.items():
        assert abs(model.params_[name] - value) < 0.001, (name, model.params_[name])
    assert model.loglik_ == pytest.approx(-9582.14, abs=0.01)
    assert (model.summary()["std_error"] > 0).all()


@pytest.mark.parametrize(
    "params",
    [[0.553, 10.578, 0.606, 11.669], [1.5, 5.0, 2.0, 3.0], [0.8, 4.0, 1.0, 4.0], [0.8, 4.0, 0.5, 400.0], [0.8, 400.0, 0.5, 4.0]],
)
def test_pareto_formulas_match_numerical_integration(params):
    # alpha < beta, alpha > beta and alpha == beta (s == 1 too): each branch of A0,
    # and far apart, where the hypergeometric argument is near 1 and the other
    # branch's form takes over.
    from salesplan.segments import _pareto
    from scipy import stats

    r, alpha, s, beta = params
    p = np.array(params)
    for x, tx, T in [(0, 0.0, 30.0), (2, 10.0, 30.0), (5, 29.0, 30.0)]:
        # A0 is (r+s+x) times the integral over the dropout time of the note's eq. 17.
        integral = integrate.quad(lambda u: (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1), tx, T, epsabs=0, epsrel=1e-13)[0]
        arr = [np.array([float(v)]) for v in (x, tx, T)]
        assert _pareto._log_a0(p, *arr)[0] == pytest.approx(np.log((r + s + x) * integral), rel=1e-12, abs=1e-12)
    if alpha > 100:
        return  # the quantile quadrature below misses the far tail the heavy buyer's lambda sits in
    lam = stats.gamma.ppf(_U, r, scale=1 / alpha)
    mu = stats.gamma.ppf(_U, s, scale=1 / beta)
    for x, tx, T in [(0, 0.0, 30.0), (2, 10.0, 30.0), (5, 29.0, 30.0)]:
        alive_part = lambda lm, m: lm**x * np.exp(-(lm + m) * T)  # noqa: E731
        lik = _mix(lambda lm, m: alive_part(lm, m) + m / (lm + m) * lm**x * (np.exp(-(lm + m) * tx) - np.exp(-(lm + m) * T)), lam, mu)
        arr = [np.array([float(v)]) for v in (x, tx, T)]
        assert _pareto.pareto_loglik(p, *arr)[0] == pytest.approx(np.log(lik), rel=1e-5)
        alive = _mix(alive_part, lam, mu) / lik
        # (The 400 x 400 quadrature itself is good to about 1e-4 where alpha and beta are far apart.)
        assert _pareto.pareto_alive(p, *arr)[0] == pytest.approx(alive, rel=5e-4)
        ahead = _mix(lambda lm, m: alive_part(lm, m) * lm / m * (1 - np.exp(-m * 20.0)), lam, mu) / lik
        assert _pareto.pareto_expected(p, np.array([20.0]), *arr)[0] == pytest.approx(ahead, rel=5e-4)
    population = _mix(lambda lm, m: lm / m * (1 - np.exp(-m * 20.0)), lam, mu)
    assert _pareto.pareto_population(p, np.array([20.0]))[0] == pytest.approx(population, rel=5e-4)
    # The two branches agree where they meet.
    near = [p * np.array([1, 1, 1, f]) for f in (1 - 1e-9, 1 + 1e-9)] if alpha == beta else []
    for q in near:
        assert _pareto.pareto_loglik(q, np.array([3.0]), np.array([12.0]), np.array([30.0]))[0] == pytest.approx(
            _pareto.pareto_loglik(p, np.array([3.0]), np.array([12.0]), np.array([30.0]))[0], rel=1e-7
        )


def test_mbg_formulas_match_numerical_integration():
    from scipy import stats

    r, alpha, a, b = 0.7, 5.0, 1.4, 3.0
    model = ModifiedBetaGeo.from_params(r=r, alpha=alpha, a=a, b=b)
    lam = stats.gamma.ppf(_U, r, scale=1 / alpha)
    p = stats.beta.ppf(_U, a, b)
    for x, tx, T in [(0, 0.0, 30.0), (2, 10.0, 30.0), (5, 29.0, 30.0)]:
        # Alive: survived the dropout chance after the first and each repeat purchase.
        alive_part = lambda lm, q: (1 - q) ** (x + 1) * lm**x * np.exp(-lm * T)  # noqa: E731
        lik = _mix(lambda lm, q: alive_part(lm, q) + q * (1 - q) ** x * lm**x * np.exp(-lm * tx), lam, p)
        summary = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
        ll = clv._mbg_loglik(np.array([r, alpha, a, b]), *(summary[c].to_numpy(dtype=float) for c in ["frequency", "recency", "T"]), 0)[0]
        assert ll == pytest.approx(np.log(lik), rel=1e-6)
        alive = _mix(alive_part, lam, p) / lik
        assert model.probability_alive(summary)["probability_alive"].iloc[0] == pytest.approx(alive, rel=1e-5)
    assert model.probability_alive(pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [30.0]}))["probability_alive"].iloc[0] < 1
    # Population E[X(t)], the closed form of lifetimes, and the conditional
    # expectation without Euler's transformation.
    t = 39.0
    pop = b / (a - 1) * (1 - special.hyp2f1(r, b + 1, a + b, t / (alpha + t)) * (alpha / (alpha + t)) ** r)
    assert model.expected_repeat_purchases([t])["expected_purchases"].iloc[0] == pytest.approx(pop, rel=1e-10)
    x, tx, T = 3.0, 20.0, 39.0
    z = t / (alpha + T + t)
    direct = (
        (a + b + x) / (a - 1) * (1 - special.hyp2f1(r + x, b + x + 1, a + b + x, z) * ((alpha + T) / (alpha + T + t)) ** (r + x))
        / (1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x))
    )
    summary = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    assert model.predict_purchases(summary, t)["expected_purchases"].iloc[0] == pytest.approx(direct, rel=1e-10)


def test_mbg_gradient_and_hessian_are_derivatives_of_the_loglik(rng):
    sim = _simulate_bgnbd(rng, 400, 0.5, 5.0, 0.8, 2.5, T=30.0)
    arrays = [sim[c].to_numpy(dtype=float) for c in ["frequency", "recency", "T"]]
    for params in ([0.5, 5.0, 0.8, 2.5], [2.0, 1.0, 3.0, 0.7]):
        params = np.array(params)
        numeric = optimize.approx_fprime(params, lambda p: clv._mbg_loglik(p, *arrays, 0)[0], 1e-7)
        np.testing.assert_allclose(clv._mbg_loglik(params, *arrays)[1], numeric, rtol=1e-4, atol=1e-3)
        hess = clv._mbg_loglik(params, *arrays, 2)[2]
        np.testing.assert_allclose(hess, _jacobian_of_gradient(lambda p: clv._mbg_loglik(p, *arrays)[1], params), rtol=1e-5, atol=1e-6)


def _simulate_pareto(rng, n, r, alpha, s, beta, T) -> pd.DataFrame:
    lam = rng.gamma(r, 1.0 / alpha, n)
    life = rng.exponential(1.0 / rng.gamma(s, 1.0 / beta, n))
    end = np.minimum(life, T)
    x = rng.poisson(lam * end)
    # Given x purchases in (0, end], their times are uniform: the last is end * U^(1/x).
    recency = np.where(x > 0, end * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame({"customer_id": np.arange(n), "frequency": x, "recency": recency, "T": float(T)})


def test_pareto_recovers_simulated_parameters(rng):
    truth = {"r": 0.8, "alpha": 6.0, "s": 1.2, "beta": 20.0}
    sim = _simulate_pareto(rng, 5000, *truth.values(), T=52.0)
    model = ParetoNBD().fit(sim)
    table = model.summary().set_index("parameter")
    for name, value in truth.items():
        z = (table.loc[name, "estimate"] - value) / table.loc[name, "std_error"]
        assert abs(z) < 3.5, (name, table.loc[name].to_dict())
    alive = model.probability_alive(sim)["probability_alive"]
    assert ((0 <= alive) & (alive <= 1)).all()


@pytest.mark.reference
def test_every_purchase_model_works_with_clv_holdout_and_tracking(cdnow, cdnow_models):
    summary, tx = cdnow["summary"], cdnow["tx"]
    kw = {"calibration_end": "1997-09-30", "observation_end": "1998-06-30", "freq": "D", "freq_multiplier": 7}
    for model in cdnow_models.values():
        value = customer_lifetime_value(model, cdnow["gg"], summary, discount_rate=0.0)
        np.testing.assert_allclose(
            value["expected_purchases"], model.predict_purchases(summary, 12 * 365.25 / 12 / 7)["expected_purchases"], rtol=1e-10
        )
        np.testing.assert_allclose(value["clv"], value["expected_purchases"] * value["expected_spend"], rtol=1e-10)
        table = calibration_holdout(model, summary)
        assert table.attrs["model"] == model._label
        assert [t.name for t in plot_calibration_holdout(table).data] == ["actual", model._label]
        track = repeat_purchase_tracking(model, tx, **kw)
        at_end = track.loc[track["t"] == 0].iloc[0]
        new = summary.assign(frequency=0, recency=0.0, T=0.0)
        expected = model.predict_purchases(new, summary["T"].to_numpy())["expected_purchases"].sum()
        assert at_end["expected_cumulative"] == pytest.approx(expected, rel=1e-8)
        assert plot_tracking(track).data[1].name == model._label
        assert 0.8 < track["expected_cumulative"].iloc[-1] / track["actual_cumulative"].iloc[-1] < 1.0


# ---------------------------------------------------------------------------
# select_model
# ---------------------------------------------------------------------------


@pytest.mark.reference
def test_cdnow_select_model(cdnow):
    kw = {"calibration_end": "1997-09-30", "observation_end": "1998-06-30", "freq": "D", "freq_multiplier": 7}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no guest lines, no optimiser trouble: nothing to say
        out = select_model(cdnow["tx"], **kw)
    assert list(out.columns) == [
        "model", "label", "group", "n_customers", "actual", "predicted", "ratio", "mae", "rmse",
        "loglik", "chosen", "diagnostics", "error",
    ]
    assert out["model"].unique().tolist() == ["bgnbd", "mbgnbd", "pareto"]
    assert out.loc[out["model"] == "bgnbd", "group"].tolist() == ["all", "0", "1", "2", "3", "4", "5", "6", "7+"]
    total = out[out["group"] == "all"].set_index("model")
    assert (total["actual"] == 1882).all() and (total["n_customers"] == 2357).all()
    groups = out[out["group"] != "all"].groupby("model")[["actual", "predicted", "n_customers"]].sum()
    np.testing.assert_allclose(groups.to_numpy(), total.loc[groups.index, ["actual", "predicted", "n_customers"]].to_numpy())
    pdt.assert_series_equal(total["ratio"], total["predicted"] / total["actual"], check_names=False)
    assert total.loc["bgnbd", "loglik"] == pytest.approx(PUBLISHED_BG_LOGLIK, abs=0.1)
    assert total.loc["pareto", "loglik"] == pytest.approx(PUBLISHED_PARETO_LOGLIK, abs=0.1)
    # The three fit the holdout about equally well (root mean squared errors within
    # 1% of each other): the tie goes to BG/NBD.
    assert total["rmse"].max() / total["rmse"].min() < 1.01
    assert out.loc[out["chosen"], "model"].unique().tolist() == ["bgnbd"]
    assert (total["error"] == "").all()
    assert total.loc["bgnbd", "diagnostics"].startswith("BG/NBD predicts 88% of the holdout repeat purchases")
    # Without tolerance the lowest error wins.
    strict = select_model(cdnow["tx"], tolerance=0.0, **kw)
    best = strict[strict["group"] == "all"].set_index("model")["rmse"].idxmin()
    assert strict.loc[strict["chosen"], "model"].unique().tolist() == [best]


def _weekly_tx(rng, n_customers=150, weeks=60, start="2023-01-02"):
    """Customers buying in some weeks of a history of ``weeks`` weeks."""
    rows = []
    for c in range(n_customers):
        first = rng.integers(0, weeks // 3)
        rate = rng.gamma(1.0, 0.15)
        life = rng.exponential(40)
        for w in range(first, weeks):
            if w == first or (w - first < life and rng.random() < rate):
                rows.append((f"c{c:03d}", pd.Timestamp(start) + pd.Timedelta(weeks=int(w)), 10.0 + c % 7))
    return pd.DataFrame(rows, columns=["customer_id", "order_date", "revenue"])


def test_select_model_defaults_guests_and_chosen_rule(rng):
    tx = _weekly_tx(rng)
    guests = tx.sample(10, random_state=1).assign(customer_id=None)
    with pytest.warns(SalesplanDataWarning) as record:
        out = select_model(pd.concat([tx, guests], ignore_index=True), models=["pareto", "bgnbd"])
    assert [str(w.message) for w in record if "without a customer" in str(w.message)][0].startswith(
        "select_model: left out 10 lines"
    )
    assert record[0].filename == __file__
    # Default window: the last purchase ends the holdout, a third of the history is held out.
    last = tx["order_date"].max()
    assert out.attrs["observation_end"] == last
    span = last - tx["order_date"].min()
    assert out.attrs["calibration_end"] == last - pd.Timedelta(days=int(span / 3 / pd.Timedelta(days=1)))
    summary = summary_from_transactions(tx, calibration_end=out.attrs["calibration_end"], observation_end=last, value_col=None)
    total = out[out["group"] == "all"].set_index("model")
    assert (total["actual"] == summary["frequency_holdout"].sum()).all()
    bg = BetaGeo().fit(summary)
    pred = bg.predict_purchases(summary, summary["duration_holdout"])["expected_purchases"]
    assert total.loc["bgnbd", "predicted"] == pytest.approx(pred.sum(), rel=1e-9)
    assert total.loc["bgnbd", "mae"] == pytest.approx(np.mean(np.abs(pred - summary["frequency_holdout"])), rel=1e-9)
    assert total.loc["bgnbd", "rmse"] == pytest.approx(np.sqrt(np.mean((pred - summary["frequency_holdout"]) ** 2)), rel=1e-9)
    # The rule: lowest rmse, but BG/NBD whenever it is within the tolerance.
    gap = total.loc["bgnbd", "rmse"] / total["rmse"].min() - 1
    for tolerance in (0.0, gap + 1e-9, 1.0):
        chosen = select_model(tx, models=["pareto", "bgnbd"], tolerance=tolerance)
        name = chosen.loc[chosen["chosen"], "model"].unique().tolist()
        assert name == (["bgnbd"] if gap <= tolerance else [total["rmse"].idxmin()])
    assert isinstance(repeat_model(name[0]), type(REPEAT_MODELS[name[0]]()))


def test_select_model_short_history_says_what_is_needed(small_tx):
    with pytest.raises(SalesplanDataError, match=r"select_model needs a holdout period after calibration_end \(2024-02-10\)"):
        select_model(small_tx, calibration_end="2024-02-10")
    with pytest.raises(SalesplanDataError, match=r"select_model needs at least 4 periods \(freq='W'\) of calibration and 2 of holdout; calibration to 2024-01-10 gives 1 and the holdout to 2024-02-10 gives 4"):
        select_model(small_tx, calibration_end="2024-01-10")
    # Long enough, but nobody bought twice in the calibration period: no model can be fitted.
    one_off = pd.DataFrame({
        "customer_id": ["a", "b", "c", "a"],
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-15", "2024-04-01"]),
        "revenue": 1.0,
    })
    with pytest.raises(SalesplanDataError, match=r"could not fit any of the models .* no repeat buyers"):
        select_model(one_off, calibration_end="2024-02-29")
    with pytest.raises(SalesplanError, match=r"models must be one of \['bgnbd', 'mbgnbd', 'pareto'\], got 'bg'"):
        select_model(small_tx, models=["bg"])
    with pytest.raises(SalesplanError, match="tolerance must be a number >= 0"):
        select_model(small_tx, tolerance=-1)


# ---------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------


def _nbd_summary(rng, n=3000, T=52.0):
    """Customers who never drop out: NBD purchases only."""
    lam = rng.gamma(0.8, 1.0 / 6.0, n)
    x = rng.poisson(lam * T)
    recency = np.where(x > 0, T * rng.random(n) ** (1.0 / np.maximum(x, 1)), 0.0)
    return pd.DataFrame({"frequency": x, "recency": recency, "T": T})


def test_diagnostics_nobody_drops_out(rng):
    summary = _nbd_summary(rng)
    for cls in (BetaGeo, ModifiedBetaGeo, ParetoNBD):
        # The fit runs off along the flat ridge of "no dropout": the optimiser
        # may stop short, and the dropout parameters are not pinned down.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SalesplanWarning)
            model = cls().fit(summary)
        report = model.diagnostics()
        assert "not_identified" in report["check"].tolist()
        assert list(report.columns) == ["model", "check", "message"]
        assert "no_dropout" in report["check"].tolist(), (model, report)
        message = report.set_index("check").loc["no_dropout", "message"]
        assert message.startswith("Almost nobody seems to drop out")
        assert message.endswith(
            "the model treats every customer as alive, so probability-alive is near 100% and CLV rests on purchase rates alone."
        )
        assert model.probability_alive(summary)["probability_alive"].mean() > 0.97
    # The sound CDNOW-like parameters raise nothing.
    assert BetaGeo.from_params(**PUBLISHED_BG).diagnostics().empty
    assert ParetoNBD.from_params(**PUBLISHED_PARETO).diagnostics().empty


def test_diagnostics_polarised_dropout():
    model = BetaGeo.from_params(r=3.9, alpha=142.0, a=3.8e-8, b=1.5e-8)
    report = model.diagnostics()
    assert report["check"].tolist() == ["polarised_dropout"]
    message = report["message"].iloc[0]
    assert message.startswith("The BG/NBD fit splits customers into two extremes (a = 3.8e-08, b = 1.5e-08): 72% drop out")


def test_diagnostics_gamma_gamma_infinite_mean_spend(rng):
    # Spend scales nu ~ Gamma(q = 0.6, gamma): the population mean spend is infinite.
    n = 3000
    nu = rng.gamma(0.6, 1.0 / 15.0, n)
    x = rng.integers(1, 8, n)
    spend = np.array([rng.gamma(6.0, 1.0 / v, k).mean() for v, k in zip(nu, x)])
    gg = GammaGamma().fit(pd.DataFrame({"frequency": x, "monetary_value": spend}))
    assert gg.params_["q"] < 1
    report = gg.diagnostics()
    assert report["check"].tolist() == ["infinite_mean_spend"]
    assert report["message"].iloc[0].startswith(f"The spend model has q = {gg.params_['q']:.3g} <= 1, so its mean spend per purchase is infinite")
    assert GammaGamma.from_params(**PUBLISHED_GG).diagnostics().empty


def test_diagnostics_too_few_repeat_buyers(rng):
    sim = _simulate_bgnbd(rng, 30, 0.5, 5.0, 0.8, 2.5, T=30.0)
    model = BetaGeo(penalizer=0.01).fit(sim)
    n_repeat = int((sim["frequency"] > 0).sum())
    assert n_repeat < 30
    report = model.diagnostics().set_index("check")
    assert report.loc["few_repeat_buyers", "message"].startswith(f"Only {n_repeat} of 30 customers bought more than once")
    repeat = sim[sim["frequency"] > 0].assign(monetary_value=rng.gamma(6.0, 5.0, n_repeat))
    gg = GammaGamma(penalizer=0.01).fit(repeat)
    assert "few_repeat_buyers" in gg.diagnostics()["check"].tolist()


def test_diagnostics_holdout_gap():
    model = BetaGeo.from_params(**PUBLISHED_BG)
    summary = pd.DataFrame({"frequency": [0, 2, 5], "recency": [0.0, 20.0, 35.0], "T": [39.0, 39.0, 39.0], "duration_holdout": 39.0})
    predicted = model.predict_purchases(summary, 39.0)["expected_purchases"].sum()
    # Customers bought 1 / 0.7 as much as predicted: the model predicts 70% of it.
    actual = predicted / 0.7
    summary["frequency_holdout"] = [0.0, 0.0, actual]
    report = model.diagnostics(summary)
    assert report["check"].tolist() == ["holdout_gap"]
    assert report["message"].iloc[0] == (
        f"BG/NBD predicts 70% of the holdout repeat purchases ({predicted:,.0f} predicted, "
        f"{actual:,.0f} actual): expect CLV to be about 30% low."
    )
    summary["frequency_holdout"] = [0.0, 0.0, predicted / 1.25]
    assert model.diagnostics(summary)["message"].iloc[0].endswith("expect CLV to be about 25% high.")
    summary["frequency_holdout"] = [0.0, 0.0, predicted * 1.05]  # within 10%: nothing to say
    assert model.diagnostics(summary).empty
    summary["frequency_holdout"] = 0.0
    assert model.diagnostics(summary)["check"].tolist() == ["no_holdout_purchases"]


@pytest.mark.reference
def test_real_export_b2b_wholesaler(shared_data):
    """sales_data_sample: 2,823 order lines of 92 customers of a model-car wholesaler."""
    from salesplan.io import load_transactions

    tx = load_transactions(
        shared_data / "exports" / "sales_data_sample" / "sales_data_sample.csv",
        columns={"ORDERDATE": "order_date", "CUSTOMERNAME": "customer_id", "SALES": "revenue"},
    )
    assert tx["customer_id"].nunique() == 92
    out = select_model(tx, calibration_end="2004-08-29", observation_end="2005-05-31")
    total = out[out["group"] == "all"].set_index("model")
    # Actual holdout repeat purchases, counted by hand: distinct (customer, week)
    # purchases after the calibration end by customers who bought before it.
    weeks = tx.assign(week=tx["order_date"].dt.to_period("W"))
    # (The calibration end is a Sunday, so no week straddles it.)
    known = weeks.loc[weeks["order_date"] <= "2004-08-29", "customer_id"].unique()
    hold = weeks[(weeks["order_date"] > "2004-08-29") & weeks["customer_id"].isin(known)]
    assert (total["actual"] == hold.drop_duplicates(["customer_id", "week"]).shape[0]).all()
    assert (total["n_customers"] == len(known)).all()
    # Every model falls well short of the holdout, and says so.
    assert (total["ratio"].dropna() < 0.8).all()
    for name, row in total.iterrows():
        if not row["error"]:
            assert f"{row['label']} predicts {row['ratio']:.0%} of the holdout repeat purchases" in row["diagnostics"]
    assert out["chosen"].any()


_pareto_params = st.fixed_dictionaries(
    {"r": st.floats(0.05, 5.0), "alpha": st.floats(0.1, 50.0), "s": st.floats(0.05, 5.0), "beta": st.floats(0.1, 50.0)}
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_pareto_params, mbg=_params, customer=_customers(), t1=st.floats(0.0, 200.0), t2=st.floats(0.0, 200.0))
def test_mbg_and_pareto_alive_in_unit_interval_and_purchases_increase_with_t(params, mbg, customer, t1, t2):
    x, tx, T = customer
    summary = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    lo, hi = sorted((t1, t2))
    for model in (ParetoNBD.from_params(**params), ModifiedBetaGeo.from_params(**mbg)):
        alive = model.probability_alive(summary)["probability_alive"].iloc[0]
        assert 0.0 <= alive <= 1.0
        e_lo = model.predict_purchases(summary, lo)["expected_purchases"].iloc[0]
        e_hi = model.predict_purchases(summary, hi)["expected_purchases"].iloc[0]
        assert np.isfinite(e_lo) and np.isfinite(e_hi)
        assert 0.0 <= e_lo <= e_hi * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("cls", [BetaGeo, ModifiedBetaGeo])
def test_predictions_are_continuous_through_the_removable_singularity(cls):
    # A polarised fit (a, b -> 0 at a fixed ratio) puts 2F1's c = a + b + x - 1
    # (BG/NBD, x = 1) or a + b + x (MBG/NBD, x = 0) next to 0, where the
    # expectation is finite but scipy's 2F1 loses every digit.
    summary = pd.DataFrame({"frequency": [0, 1, 2, 5], "recency": [0.0, 10.0, 20.0, 28.0], "T": 30.0})

    def predict(k):
        model = cls.from_params(r=3.9, alpha=142.0, a=2.5 * k, b=1.0 * k)
        return np.r_[model.predict_purchases(summary, 40.0)["expected_purchases"], model.expected_repeat_purchases([40.0])["expected_purchases"]]

    reference = predict(1e-7)
    for k in (1e-12, 1e-10, 1e-8):
        np.testing.assert_allclose(predict(k), reference, rtol=1e-5)
    np.testing.assert_allclose(predict(1e-5), reference, rtol=1e-4)
    if cls is BetaGeo:  # a + b = 1 at x = 0: c = 0 too
        new = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
        at = [BetaGeo.from_params(r=1.0, alpha=1.0, a=0.5, b=0.5 + d).predict_purchases(new, 1.0)["expected_purchases"].iloc[0] for d in (-1e-4, 0.0, 1e-9, 1e-4)]
        assert at[1] == pytest.approx(at[2], rel=1e-8)
        assert at[1] == pytest.approx((at[0] + at[3]) / 2, rel=1e-6)


def test_diagnostics_gamma_gamma_spend_that_depends_on_frequency(rng):
    x = rng.integers(1, 12, 500)
    independent = pd.DataFrame({"frequency": x, "monetary_value": rng.gamma(6.0, 5.0, 500)})
    gg = GammaGamma().fit(independent)
    assert gg.diagnostics(independent).empty
    # Frequent buyers spend more per purchase.
    dependent = independent.assign(monetary_value=independent["monetary_value"] * x)
    report = GammaGamma().fit(dependent).diagnostics(dependent)
    assert report["check"].tolist() == ["spend_depends_on_frequency"]
    corr = np.corrcoef(x, dependent["monetary_value"])[0, 1]
    assert report["message"].iloc[0].startswith(
        f"Customers who buy more often spend more per purchase (correlation {corr:.2f} between"
    )
