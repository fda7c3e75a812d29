"""The demo company: reproducible files, the schema's shape, integrity and realism."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from salesplan import datasets
from salesplan.datasets import load_demo, make_demo, make_transactions, write_demo
from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.schema import OPEN_STAGES, STAGES, STATUSES, TABLES, TARGET_LEVELS

END = pd.Timestamp("2025-12-31")


@pytest.fixture(scope="module")
def demo() -> dict[str, pd.DataFrame]:
    return load_demo()


@pytest.fixture(scope="module")
def sales(demo) -> pd.DataFrame:
    return demo["transactions"]


# --- reproducibility ---------------------------------------------------------------

def test_regenerating_gives_the_committed_files_byte_for_byte(tmp_path, project_root):
    committed = project_root / "data" / "demo"
    assert datasets.main(["--out", str(tmp_path), "--seed", "42"]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in committed.glob("*.csv"))
    assert written == sorted(f"{t}.csv" for t in TABLES)
    for name in written:
        new, old = (tmp_path / name).read_bytes(), (committed / name).read_bytes()
        assert new == old, f"{name} differs from the committed demo file; run `make demo-data`"


def test_files_are_utf8_with_lf_endings_and_small(project_root):
    folder = project_root / "data" / "demo"
    total = 0
    for f in folder.glob("*.csv"):
        raw = f.read_bytes()
        total += len(raw)
        assert b"\r" not in raw, f.name
        raw.decode("utf-8")
        assert raw.endswith(b"\n")
    assert total < 6e6


def test_same_seed_same_data_other_seed_other_data():
    opts = dict(n_customers=200, end="2023-12-31")
    first = make_transactions(seed=7, **opts)
    datasets._simulate.cache_clear()  # really simulate again, not read the cache
    pdt.assert_frame_equal(make_transactions(seed=7, **opts), first)
    other = make_transactions(seed=8, **opts)
    assert not first["revenue"].equals(other["revenue"])
    assert abs(first["revenue"].sum() - other["revenue"].sum()) > 1.0


def test_loaded_files_equal_the_generated_frames(demo):
    made = make_demo(42)
    assert list(made) == list(TABLES)
    for name, frame in made.items():
        pdt.assert_frame_equal(demo[name], frame, check_exact=False, rtol=1e-12, obj=name)


def test_returned_frames_are_copies():
    a = make_demo(42)
    a["reps"].loc[0, "name"] = "changed"
    a["transactions"]["revenue"] = 0.0
    b = make_demo(42)
    assert b["reps"].loc[0, "name"] != "changed"
    assert b["transactions"]["revenue"].abs().sum() > 0


# --- the schema's shape --------------------------------------------------------------

@pytest.mark.parametrize("table", list(TABLES))
def test_load_demo_has_the_schema_columns_and_dtypes(demo, table):
    df = load_demo(table)
    schema = TABLES[table]
    assert set(schema.required) <= set(df.columns)
    assert set(df.columns) <= set(schema.names), "only columns of the data model"
    dtypes = schema.dtypes()
    for col in df.columns:
        assert df[col].dtype == pd.Series([], dtype=dtypes[col]).dtype, (table, col, df[col].dtype)
    for col in schema.required:
        assert df[col].notna().all(), (table, col)
    assert len(df) > 0
    pdt.assert_frame_equal(df, demo[table])


def test_keys_are_unique(demo):
    for name, schema in TABLES.items():
        if schema.key:
            assert not demo[name].duplicated(list(schema.key)).any(), name
    t = demo["transactions"]
    assert not t.duplicated(["order_id", "product_id"]).any()
    tickets = demo["feedback"]["ticket_id"].dropna()
    assert tickets.is_unique


def test_load_demo_errors_say_how_to_fix(tmp_path):
    with pytest.raises(SalesplanDataError, match="make demo-data"):
        load_demo("transactions", path=tmp_path)
    with pytest.raises(SalesplanError, match="Known tables"):
        load_demo("transaction")


def test_load_demo_path_override(tmp_path, demo):
    write_demo(tmp_path, seed=42)
    reps = load_demo("reps", path=tmp_path)
    pdt.assert_frame_equal(reps, demo["reps"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_customers=10), "n_customers"),
    (dict(seed=-1), "seed"),
    (dict(start="2025-01-01", end="2025-02-01"), "180 days"),
    (dict(end="not a date"), "dates"),
    (dict(return_rate=0.5), "return_rate"),
])
def test_bad_options_raise_with_a_fix(kwargs, match):
    with pytest.raises(SalesplanError, match=match):
        make_demo(**kwargs)


# --- referential integrity -----------------------------------------------------------

def test_every_reference_exists(demo):
    t, c, r = demo["transactions"], demo["customers"], demo["reps"]
    products = datasets.make_products()
    assert t["customer_id"].isin(c["customer_id"]).all()
    assert t["rep_id"].isin(r["rep_id"]).all()
    assert t["product_id"].isin(products["product_id"]).all()
    cat = products.set_index("product_id")["category"]
    assert (t["category"].to_numpy() == cat.reindex(t["product_id"]).to_numpy()).all()
    region = c.set_index("customer_id")["region"]
    assert (t["region"].to_numpy() == region.reindex(t["customer_id"]).to_numpy()).all()
    o = demo["opportunities"]
    assert o["customer_id"].isin(c["customer_id"]).all() and o["rep_id"].isin(r["rep_id"]).all()
    assert demo["stage_history"]["opportunity_id"].isin(o["opportunity_id"]).all()
    assert demo["feedback"]["customer_id"].isin(c["customer_id"]).all()
    managers = r["manager"].dropna()
    assert managers.isin(r["rep_id"]).all()
    # every customer bought in the window, and not before its first order
    first = t.groupby("customer_id")["order_date"].min()
    assert set(first.index) == set(c["customer_id"])
    since = c.set_index("customer_id")["first_order_date"].reindex(first.index)
    assert (since <= first).all()


def test_transactions_lines_add_up(sales):
    t = sales
    np.testing.assert_allclose(t["revenue"], (t["quantity"] * t["unit_price"]).round(2), atol=0.005)
    assert (t["unit_price"] > 0).all()
    assert ((t["quantity"] < 0) == (t["revenue"] < 0)).all()
    assert t["order_date"].between("2023-01-01", END).all()
    assert set(t["channel"]) == {"direct", "partner", "online"}
    assert t["region"].nunique() >= 4
    assert t.equals(t.sort_values(["order_date", "order_id", "product_id"], kind="stable"))


def test_reps_sell_in_their_own_region_after_their_hire(demo):
    t = demo["transactions"].merge(
        demo["reps"][["rep_id", "region", "start_date"]], on="rep_id", suffixes=("", "_rep"))
    assert (t["region"] == t["region_rep"]).all()
    assert (t.loc[t["revenue"] > 0, "order_date"] >= t.loc[t["revenue"] > 0, "start_date"]).all()
    o = demo["opportunities"].merge(demo["reps"], on="rep_id")
    assert (o["created_date"] >= o["start_date"]).all()


def test_stage_histories_follow_the_process(demo):
    h = demo["stage_history"]
    o = demo["opportunities"].set_index("opportunity_id")
    assert set(h["stage"]) <= set(STAGES)
    h = h.assign(rank=h["stage"].map({s: i for i, s in enumerate(STAGES)}).astype(int))
    h = h.sort_values(["opportunity_id", "rank"], kind="stable")
    g = h.groupby("opportunity_id")
    assert (g["rank"].diff().dropna() >= 1).all(), "stages in process order, each once"
    assert (g["entered_at"].diff().dropna() >= pd.Timedelta(0)).all(), "dates never go back"
    assert (g["rank"].first() == 0).all(), "every deal starts in prospecting"
    path = h.loc[h["stage"] != "lost"]
    assert (path["rank"] == path.groupby("opportunity_id").cumcount()).all(), \
        "no stage skipped (lost may follow any stage)"
    last = g.last()
    assert (last["stage"] == o.loc[last.index, "stage"]).all()
    created = h.loc[h["stage"] == "prospecting"].set_index("opportunity_id")["entered_at"]
    assert (created == o.loc[created.index, "created_date"]).all()
    assert (h["entered_at"] <= END).all()


def test_opportunity_statuses_and_close_dates(demo):
    o = demo["opportunities"]
    assert set(o["status"]) <= set(STATUSES)
    assert (o.loc[o["status"] == "open", "stage"].isin(OPEN_STAGES)).all()
    assert (o.loc[o["status"] == "won", "stage"] == "won").all()
    assert (o.loc[o["status"] == "lost", "stage"] == "lost").all()
    closed = o["status"] != "open"
    assert o.loc[closed, "close_date"].notna().all()
    assert (o.loc[closed, "close_date"] <= END).all()
    assert (o.loc[~closed, "close_date"] > END).all(), "open deals expect to close after the end date"
    assert (o["close_date"] >= o["created_date"]).all()
    assert (o["amount"] > 0).all()


def test_won_opportunities_are_booked_as_revenue(demo):
    o, t = demo["opportunities"], demo["transactions"]
    won = o.loc[o["status"] == "won"]
    booked = (t.loc[t["revenue"] > 0].groupby(["customer_id", "order_date"])["revenue"].sum())
    expected = won.groupby(["customer_id", "close_date"])["amount"].sum()
    got = booked.reindex(expected.index).fillna(0.0)
    assert len(expected) > 50
    assert (got >= expected * 0.99).all(), "a won deal has no matching revenue on its close date"


def test_targets_levels_keys_and_sums(demo):
    tg, reps = demo["targets"], demo["reps"]
    assert set(tg["level"]) <= set(TARGET_LEVELS)
    assert set(tg["level"]) == {"company", "region", "rep"}
    assert (tg["metric"] == "revenue").all()
    assert set(tg["period"].dt.year) == {2024, 2025}
    assert (tg["period"].dt.day == 1).all()
    assert (tg.loc[tg["level"] == "company", "key"] == "all").all()
    assert set(tg.loc[tg["level"] == "region", "key"]) == set(demo["customers"]["region"])
    assert tg.loc[tg["level"] == "rep", "key"].isin(reps["rep_id"]).all()
    by = tg.pivot_table(index="period", columns="level", values="value", aggfunc="sum")
    np.testing.assert_allclose(by["company"], by["region"])
    np.testing.assert_allclose(by["rep"], by["region"], rtol=0.002)
    # no target before a rep was hired
    rep_t = tg.loc[tg["level"] == "rep"].merge(reps, left_on="key", right_on="rep_id")
    assert (rep_t["period"] >= rep_t["start_date"].dt.to_period("M").dt.to_timestamp()).all()


def test_feedback_shapes(demo):
    fb = demo["feedback"]
    sat = fb["satisfaction"].dropna()
    assert sat.between(1, 5).all() and (sat == sat.round()).all()
    tickets = fb["ticket_id"].notna()
    assert fb.loc[tickets, "issue_type"].notna().all()
    assert fb.loc[~tickets, ["issue_type", "resolved_at"]].isna().all().all()
    resolved = fb.loc[tickets & fb["resolved_at"].notna()]
    assert (resolved["resolved_at"] >= resolved["date"]).all()
    assert fb.loc[tickets, "resolved_at"].isna().any(), "some tickets are still open at the end"
    assert fb["issue_type"].nunique() >= 4


def test_market_share_is_plausible(demo):
    m, t = demo["market"], demo["transactions"]
    assert not m.duplicated(["period", "region"]).any()
    assert len(m) == 36 * t["region"].nunique()
    ours = t.groupby([t["order_date"].dt.to_period("M").dt.to_timestamp().rename("period"), "region"])["revenue"].sum()
    mm = m.set_index(["period", "region"])
    share = ours.reindex(mm.index) / mm["market_size"]
    assert 0.10 <= share.mean() <= 0.20
    assert share.between(0.03, 0.35).all()
    np.testing.assert_allclose(mm["market_size"] - mm["competitor_sales"], ours.reindex(mm.index), atol=1000.01)


# --- realism: things an analysis should find ------------------------------------------

def _monthly(sales):
    return sales.groupby(sales["order_date"].dt.to_period("M"))["revenue"].sum()


def test_december_peak_every_year(sales):
    monthly = _monthly(sales)
    for year in (2023, 2024, 2025):
        months = monthly[monthly.index.year == year]
        assert len(months) == 12
        assert months[months.index.month == 12].iloc[0] > months.mean(), year


def test_summer_dip(sales):
    monthly = _monthly(sales)
    summer = monthly[monthly.index.month.isin([7, 8])].mean()
    assert summer < monthly.mean()


def test_year_over_year_growth(sales):
    yearly = sales.groupby(sales["order_date"].dt.year)["revenue"].sum()
    growth = yearly.pct_change().dropna()
    assert (growth > 0).all()
    assert 0.02 < (yearly[2025] / yearly[2023]) ** 0.5 - 1 < 0.15
    # regions grow at different rates
    by_region = sales.groupby([sales["order_date"].dt.year, "region"])["revenue"].sum().unstack()
    cagr = (by_region.loc[2025] / by_region.loc[2023]) ** 0.5 - 1
    assert cagr.max() - cagr.min() > 0.03


def test_returns_share(sales):
    share = (sales["revenue"] < 0).mean()
    assert 0.01 <= share <= 0.04
    assert sales.loc[sales["revenue"] < 0, "order_id"].str.startswith("CN").all()


def test_customers_are_heterogeneous(sales):
    orders = sales.loc[sales["revenue"] > 0].groupby("customer_id")["order_id"].nunique()
    assert (orders == 1).mean() > 0.05
    assert (orders > 10).mean() > 0.05
    spend = sales.groupby("customer_id")["revenue"].sum()
    assert spend.quantile(0.9) > 5 * spend.median()
    assert 2000 <= sales["customer_id"].nunique() <= 4000


def test_win_rate_and_open_pipeline(demo):
    o = demo["opportunities"]
    closed = o.loc[o["status"] != "open"]
    win_rate = (closed["status"] == "won").mean()
    assert 0.15 <= win_rate <= 0.40
    assert (o["status"] == "open").sum() >= 20
    assert o.loc[o["status"] == "open", "stage"].nunique() >= 3
    # later stages convert better than early ones
    h = demo["stage_history"]
    reached = h["stage"].value_counts()
    assert reached["won"] / reached["contract"] > reached["first_contact"] / reached["prospecting"]


def test_organisation(demo):
    reps = demo["reps"]
    assert 15 <= len(reps) <= 25
    assert 4 <= reps["team"].nunique() <= 5
    assert (reps["start_date"] > END - pd.Timedelta(days=365)).sum() >= 2, "recent hires for ramp-up"
    assert reps["manager"].isna().sum() == reps["team"].nunique(), "one lead per team"
    products = datasets.make_products()
    assert len(products) >= 30 and products["category"].nunique() >= 5
    assert products["price_change_date"].notna().any()


def test_price_increase_shows_in_unit_prices(sales):
    products = datasets.make_products()
    p = products.loc[products["price_change_date"].notna()].iloc[0]
    lines = sales.loc[(sales["product_id"] == p["product_id"]) & (sales["revenue"] > 0)]
    before = lines.loc[lines["order_date"] < p["price_change_date"], "unit_price"].max()
    after = lines.loc[lines["order_date"] >= p["price_change_date"], "unit_price"].max()
    assert after > before


def test_low_satisfaction_goes_with_churn(demo):
    t, fb = demo["transactions"], demo["feedback"]
    last = t.groupby("customer_id")["order_date"].max()
    score = fb.groupby("customer_id")["satisfaction"].mean()
    gone = score.reindex(last.index[last < END - pd.Timedelta(days=270)]).mean()
    active = score.reindex(last.index[last > END - pd.Timedelta(days=90)]).mean()
    assert gone < active


def test_ground_truth_is_available():
    truth = make_demo(42, truth=True)
    c = truth["customers"]
    assert {"purchase_rate", "dropout_probability", "alive"} <= set(c.columns)
    assert c["alive"].mean() > 0.3 and (~c["alive"]).sum() > 100
    assert "products" in truth
    # the written tables stay within the schema
    assert "purchase_rate" not in make_demo(42)["customers"].columns


def test_docstring_examples_run():
    result = doctest.testmod(datasets, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5
    assert result.failed == 0


def test_the_io_loaders_read_the_demo_files_to_the_same_frames(demo, project_root):
    io = pytest.importorskip("salesplan.io")
    if not hasattr(io, "load_table"):
        pytest.skip("salesplan.io.load_table is not there yet")
    for name, frame in demo.items():
        loaded = io.load_table(project_root / "data" / "demo" / f"{name}.csv", name)
        pdt.assert_frame_equal(loaded[list(frame.columns)], frame, obj=name)


def test_small_generators_agree_with_the_demo():
    demo = make_demo(42, truth=True)
    pdt.assert_frame_equal(datasets.make_products(), demo["products"])
    pdt.assert_frame_equal(datasets.make_reps(truth=True), demo["reps"])
    pdt.assert_frame_equal(datasets.make_reps(), make_demo(42)["reps"])
    pdt.assert_frame_equal(datasets.make_opportunities(), demo["opportunities"])
    pdt.assert_frame_equal(datasets.make_customers(truth=True), demo["customers"])


# --- large synthetic files -----------------------------------------------------------

def test_write_transactions_in_chunks_sizes_columns_and_determinism(tmp_path):
    a = datasets.write_transactions(tmp_path / "a.parquet", rows=50_000, chunk_rows=17_000, seed=5)
    b = datasets.write_transactions(tmp_path / "b.parquet", rows=50_000, chunk_rows=17_000, seed=5)
    c = datasets.write_transactions(tmp_path / "c.csv", rows=50_000, chunk_rows=17_000, seed=5)
    other = datasets.write_transactions(tmp_path / "d.parquet", rows=50_000, chunk_rows=17_000, seed=6)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(a).metadata.num_row_groups == 3  # one row group per chunk
    assert a.read_bytes() == b.read_bytes()
    df = pd.read_parquet(a)
    assert len(df) == 50_000
    assert list(df.columns) == list(datasets._TRANSACTION_COLUMNS)
    text = pd.read_csv(c, dtype={"customer_id": str})
    assert list(text.columns) == list(df.columns) and len(text) == 50_000
    pdt.assert_series_equal(text["revenue"], df["revenue"])
    assert not pd.read_parquet(other)["revenue"].equals(df["revenue"])
    # Loaded by the loader as any export: no line dropped, dates in the window.
    from salesplan.io import load_transactions

    loaded = load_transactions(c)
    assert len(loaded) == 50_000
    assert loaded["order_date"].between("2023-01-01", "2025-12-31").all()


def test_write_transactions_is_realistic(tmp_path):
    df = pd.read_parquet(datasets.write_transactions(tmp_path / "t.parquet", rows=60_000, chunk_rows=25_000))
    returns = df["revenue"] < 0
    assert 0.01 < returns.mean() < 0.03
    assert df.loc[returns, "order_id"].str.startswith("CN").all()
    assert (df["revenue"] == (df["quantity"] * df["unit_price"]).round(2)).all()
    month = pd.to_datetime(df["order_date"]).dt.month
    by_month = df.groupby(month)["revenue"].sum()
    assert by_month[12] > 1.3 * by_month[8]  # December peak, summer dip
    per_customer = df.groupby("customer_id").size()
    assert per_customer.max() > 10 * per_customer.median()  # a few large customers
    assert set(df["region"]) == set(datasets.REGIONS)
    yearly = df.groupby(pd.to_datetime(df["order_date"]).dt.year)["revenue"].sum()
    assert yearly[2025] > yearly[2023]


def test_write_transactions_command_line(tmp_path, capsys):
    out = tmp_path / "cli.csv"
    assert datasets.main(["--rows", "2_000", "--out", str(out), "--format", "csv", "--chunk-rows", "700"]) == 0
    assert len(pd.read_csv(out)) == 2_000
    assert "2,000 lines" in capsys.readouterr().out
    assert datasets.main(["--rows", "10", "--out", str(tmp_path)]) == 2
    with pytest.raises(SalesplanError, match="format must be one of"):
        datasets.write_transactions(tmp_path / "x.bin", rows=10, format="xlsx")
