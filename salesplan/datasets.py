"""Demo data: a seeded fictional company with every table of the data model.

The company sells industrial monitoring equipment (hardware, software,
services, consumables and accessories) to about 3,000 business customers in
five regions, through three channels, with 20 reps in five teams. Everything
is simulated from one seed, so the files under ``data/demo/`` regenerate byte
for byte::

    python -m salesplan.datasets --out data/demo --seed 42

How the data is made (so that analyses have something true to find):

* **Customers** follow a BG/NBD-like process: each has a purchase rate drawn
  from a gamma distribution and, after every purchase, drops out with a
  probability drawn from a beta distribution (higher for unhappy customers);
  about one in seven is a loyal customer who practically never leaves. The
  mean order value per customer is gamma distributed around a segment level
  and single orders are gamma distributed around it (gamma-gamma-like).
* **Time** runs faster or slower: purchases happen in "operational time" that
  is mapped to calendar days by a daily intensity = monthly seasonality
  (December peak, summer dip) x weekday effect x regional trend (about 8 % a
  year overall, 3 % to 14 % by region). Category trends shift the product mix.
* **Pipeline**: opportunities move through the standard stages with stage
  conversion rates and gamma-distributed stage durations; won deals become
  orders on their close date; some are still open at the end date.
* **Returns** are credit notes: separate lines with negative quantity and
  revenue, about 2 % of all lines.
* **Targets** for every full year after the first are set from the previous
  year's actuals plus a planned growth, so that they land somewhat above or
  below what was then achieved.

Only numpy and pandas are used; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from salesplan._validation import check_columns, check_positive_int
from salesplan.errors import SalesplanDataError, SalesplanError
from salesplan.schema import STAGES, TABLES, TableSchema, get_schema

__all__ = [
    "DEMO_DIR",
    "REGIONS",
    "CHANNELS",
    "SEGMENTS",
    "CATEGORIES",
    "make_demo",
    "make_products",
    "make_reps",
    "make_customers",
    "make_transactions",
    "make_opportunities",
    "make_stage_history",
    "make_feedback",
    "make_market",
    "make_targets",
    "write_demo",
    "write_transactions",
    "load_demo",
    "schema_markdown",
    "update_data_model_docs",
    "main",
]

#: Where the committed demo files live (``<repo>/data/demo``).
DEMO_DIR: Path = Path(__file__).resolve().parents[1] / "data" / "demo"

DEFAULT_START = "2023-01-01"
DEFAULT_END = "2025-12-31"

REGIONS: tuple[str, ...] = ("North", "South", "East", "West", "Central")
CHANNELS: tuple[str, ...] = ("direct", "partner", "online")
SEGMENTS: tuple[str, ...] = ("SMB", "Mid-market", "Enterprise")
CATEGORIES: tuple[str, ...] = ("Hardware", "Software", "Services", "Consumables", "Accessories")

# Column order of the transactions files (the contract's order); the other
# tables keep the schema's order.
_TRANSACTION_COLUMNS = (
    "order_date", "order_id", "customer_id", "product_id", "category", "region",
    "channel", "rep_id", "quantity", "unit_price", "revenue",
)
_TABLE_ORDER = tuple(TABLES)

# --- the company's fixed traits ------------------------------------------------

_REGION_SHARE = np.array([0.28, 0.22, 0.22, 0.18, 0.10])
# Added to the overall growth: North -2 pts, South +3, East +1, West -5, Central +6.
_REGION_GROWTH_OFFSET = np.array([-0.02, 0.03, 0.01, -0.05, 0.06])
_TEAM_SIZE = (5, 4, 4, 4, 3)
# Hires inside the window (region index, months after start): one early, three recent.
_NEW_HIRES = ((0, 15), (1, 25), (4, 29), (2, 32))

# December peak (year-end budgets), summer dip, quieter January/February.
_SEASON = np.array([0.84, 0.86, 1.02, 0.98, 1.00, 1.02, 0.84, 0.76, 1.04, 1.06, 1.10, 1.62])
_WEEKDAY = np.array([1.0, 1.05, 1.05, 1.0, 0.95, 0.15, 0.05])  # Monday..Sunday

_SEGMENT_SHARE = np.array([0.62, 0.28, 0.10])
_WARM_UP_YEARS = 25
_RATE_SHAPE, _RATE_MEAN = 0.9, 6.0  # gamma-distributed orders a year (before the segment multiplier)
_DROPOUT_BETA = (2.0, 16.0)  # beta-distributed dropout probability after each order
_SEGMENT_RATE = np.array([1.0, 1.25, 1.6])  # purchase-rate multiplier
_SEGMENT_ORDER_VALUE = np.array([650.0, 1800.0, 5200.0])
_SEGMENT_LINES = np.array([0.7, 1.1, 1.6])  # Poisson mean of extra lines per order
_SEGMENT_CHANNEL = np.array([  # direct, partner, online
    [0.15, 0.35, 0.50],
    [0.45, 0.40, 0.15],
    [0.80, 0.20, 0.00],
])
_SEGMENT_DISCOUNT = np.array([0.0, 0.03, 0.08])
_CHANNEL_DISCOUNT = np.array([0.0, 0.12, 0.0])

_INDUSTRIES = (
    "Manufacturing", "Logistics", "Utilities", "Food & Beverage", "Healthcare",
    "Construction", "Retail", "Public sector", "Chemicals", "Agriculture",
)
_INDUSTRY_SHARE = np.array([0.22, 0.14, 0.08, 0.12, 0.09, 0.1, 0.08, 0.06, 0.06, 0.05])

# Category: (yearly mix trend, products as (name, low price, high price)).
_CATALOG: dict[str, tuple[float, tuple[tuple[str, float, float], ...]]] = {
    "Hardware": (0.0, (
        ("Sensor Hub S1", 400, 700), ("Sensor Hub S2", 800, 1300), ("Edge Gateway", 1500, 2500),
        ("Controller C100", 900, 1500), ("Controller C300", 2500, 4200),
        ("Industrial Display", 1200, 2000), ("Rugged Tablet", 900, 1600),
    )),
    "Software": (0.10, (
        ("Monitor Basic licence", 200, 400), ("Monitor Pro licence", 700, 1200),
        ("Analytics add-on", 400, 800), ("Fleet Manager", 1500, 3000),
        ("API access", 300, 600), ("Support plan", 500, 900),
    )),
    "Services": (0.04, (
        ("Installation day", 700, 1000), ("Training day", 800, 1200),
        ("Consulting day", 1100, 1600), ("Maintenance visit", 250, 450),
        ("Calibration", 120, 250),
    )),
    "Consumables": (-0.02, (
        ("Filter pack", 20, 45), ("Battery pack", 35, 70), ("Cable kit", 25, 60),
        ("Label roll", 10, 20), ("Cleaning kit", 15, 35), ("Seal set", 20, 40),
        ("Fuse set", 10, 25),
    )),
    "Accessories": (-0.06, (
        ("Mounting bracket", 40, 90), ("Carry case", 60, 140), ("Power adapter", 45, 90),
        ("Antenna kit", 120, 260), ("Wall mount", 80, 180),
    )),
}

# Stage conversion (probability of moving on from each open stage) and mean
# days spent in it; the last open stage (contract) converts to won.
_STAGE_ADVANCE = np.array([0.82, 0.78, 0.78, 0.72, 0.82, 0.90])
_STAGE_DAYS = np.array([9.0, 12.0, 16.0, 14.0, 18.0, 8.0])
_SEGMENT_DEAL = np.array([4000.0, 10000.0, 30000.0])  # median deal value
_OPPS_PER_CUSTOMER = 0.15  # opportunities a year per customer
_SEGMENT_DEAL_WEIGHT = np.array([0.5, 3.0, 10.0])  # how often a customer gets a deal
_SEGMENT_CYCLE = np.array([0.8, 1.0, 1.5])  # stage-duration multiplier
_SEGMENT_CONVERSION = np.array([1.0, 0.98, 0.95])
_DEAL_CATEGORY_SHARE = {"Hardware": 0.45, "Software": 0.35, "Services": 0.20}

_ISSUE_TYPES = ("delivery", "billing", "product_defect", "installation", "usage_question")
_ISSUE_SHARE = np.array([0.30, 0.20, 0.15, 0.15, 0.20])
_ISSUE_DAYS = np.array([3.0, 5.0, 9.0, 4.0, 1.5])  # mean resolution time

_FIRST_NAMES = (
    "Anna", "Ben", "Chen", "Dana", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Kai", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
    "Uma", "Victor", "Wei", "Yara", "Zoe", "Lukas", "Mei", "Olga", "Pavel", "Sofia",
)
_LAST_NAMES = (
    "Adler", "Brandt", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Huang", "Iversen",
    "Jansen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi",
    "Schmidt", "Tanaka", "Ueda", "Varga", "Wang", "Yilmaz", "Zhang", "Berg", "Horvat",
)
_NAME_STEMS = (
    "Alder", "Birch", "Cobalt", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Linden", "Meridian", "Nordic", "Orion", "Pioneer", "Quarry", "Redwood", "Summit",
    "Tidal", "Upland", "Vertex", "Willow", "Zenith", "Atlas", "Beacon", "Crest", "Dune", "Echo",
    "Fjord", "Glacier", "Horizon", "Ivory", "Jade", "Keystone", "Lumen",
)
_NAME_WORDS = (
    "Foods", "Logistics", "Energy", "Works", "Systems", "Health", "Builders", "Retail",
    "Chemicals", "Farms", "Industries", "Metals", "Packaging", "Water", "Transport", "Labs",
    "Textiles", "Plastics", "Motors", "Services",
)
_LEGAL_FORMS = ("Ltd", "Inc", "GmbH", "Co", "AG", "BV", "SA", "Group")


# --- small helpers ---------------------------------------------------------------

def _day(value: object) -> int:
    """Days since 1970-01-01 of a date-like value."""
    return int(np.datetime64(pd.Timestamp(value).date(), "D").astype(np.int64))


def _dates(days: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(days, dtype="int64").astype("datetime64[D]").astype("datetime64[ns]"))


def _month_start_days(first: int, last: int) -> np.ndarray:
    """Day numbers of every month start from the month of ``first`` to that of ``last``."""
    months = np.arange(
        np.datetime64(first, "D").astype("datetime64[M]"),
        np.datetime64(last, "D").astype("datetime64[M]") + 1,
    )
    return months.astype("datetime64[D]").astype(np.int64)


def _add_months(day: int, months: int) -> int:
    m = np.datetime64(day, "D").astype("datetime64[M]") + months
    return int(m.astype("datetime64[D]").astype(np.int64))


def _nice_price(x: np.ndarray) -> np.ndarray:
    """Prices as a catalogue shows them: 1,289 or 24.99."""
    x = np.asarray(x, dtype=float)
    return np.where(x >= 100, np.round(x / 10) * 10 - 1, np.round(x) - 0.01)


def _rng(seed: int, stream: int) -> np.random.Generator:
    # One independent stream per generator: changing one step never shifts another.
    return np.random.default_rng([seed, stream])


def _draw(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """Row-wise categorical draws from row-wise cumulative weights."""
    u = rng.random(cum.shape[0]) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), cum.shape[1] - 1)


def _ids(prefix: str, n: int, width: int | None = None) -> np.ndarray:
    width = width or max(4, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _check_options(seed, start, end, n_customers, growth, return_rate):
    seed = check_positive_int(seed, name="seed", allow_zero=True)
    n_customers = check_positive_int(n_customers, name="n_customers")
    if n_customers < 50:
        raise SalesplanError(
            f"n_customers must be at least 50 for the demo company to have every kind of "
            f"customer, got {n_customers}. Use e.g. n_customers=500."
        )
    try:
        t0, t1 = pd.Timestamp(start), pd.Timestamp(end)
    except (TypeError, ValueError) as exc:
        raise SalesplanError(
            f"start and end must be dates such as '2023-01-01', got start={start!r}, end={end!r} ({exc})."
        ) from None
    if (t1 - t0).days < 180:
        raise SalesplanError(
            f"The demo needs at least 180 days between start and end, got start={t0.date()} "
            f"and end={t1.date()} ({(t1 - t0).days} days). Move end later, e.g. end='2025-12-31'."
        )
    growth = float(growth)
    if not -0.2 <= growth <= 0.5:
        raise SalesplanError(f"growth must be a yearly rate between -0.2 and 0.5, got {growth!r}. Use e.g. 0.08.")
    return_rate = float(return_rate)
    if not 0.0 <= return_rate <= 0.2:
        raise SalesplanError(f"return_rate must be between 0 and 0.2, got {return_rate!r}. Use e.g. 0.02.")
    return seed, str(t0.date()), str(t1.date()), n_customers, growth, return_rate


# --- the generators (private steps; they trust their inputs) ----------------------

def _gen_products(rng: np.random.Generator, start: int, end: int) -> pd.DataFrame:
    rows = []
    for cat, (_, items) in _CATALOG.items():
        for name, lo, hi in items:
            rows.append((cat, name, lo, hi))
    cat = np.array([r[0] for r in rows], dtype=object)
    lo = np.array([r[2] for r in rows], dtype=float)
    hi = np.array([r[3] for r in rows], dtype=float)
    price = _nice_price(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    popularity = np.round(rng.gamma(2.0, 0.5, len(rows)), 4)
    # Two price increases: all hardware half-way through the window, and a few
    # software licences three quarters of the way.
    span_months = max(2, int((end - start) / 30.44))
    change_day = np.full(len(rows), np.iinfo(np.int64).min, dtype=np.int64)
    increase = np.zeros(len(rows))
    hw = np.flatnonzero(cat == "Hardware")
    change_day[hw] = _add_months(start, span_months // 2)
    increase[hw] = 0.06
    sw = rng.choice(np.flatnonzero(cat == "Software"), size=3, replace=False)
    change_day[sw] = _add_months(start, (3 * span_months) // 4)
    increase[sw] = 0.08
    has_change = increase > 0
    out = pd.DataFrame({
        "product_id": _ids("P", len(rows), 2),
        "product_name": [r[1] for r in rows],
        "category": cat,
        "list_price": price,
        "price_change_date": _dates(np.where(has_change, change_day, 0)).where(has_change),
        "new_list_price": np.where(has_change, _nice_price(price * (1 + increase)), np.nan),
        "popularity": popularity,
    })
    for col in ("product_id", "product_name", "category"):
        out[col] = out[col].astype("string")
    return out


def _gen_reps(rng: np.random.Generator, start: int, end: int) -> pd.DataFrame:
    span_months = int((end - start) / 30.44)
    names = rng.permutation(len(_FIRST_NAMES) * len(_LAST_NAMES))[: sum(_TEAM_SIZE)]
    rows = []
    k = 0
    for r, region in enumerate(REGIONS):
        hired = []
        for j in range(_TEAM_SIZE[r]):
            years_before = rng.uniform(6, 11) if j == 0 else rng.uniform(0.7, 8)
            hired.append(start - int(years_before * 365.25))
        # Replace the newest veterans by in-window hires so the team size stays fixed.
        in_window = [m for reg, m in _NEW_HIRES if reg == r and m < span_months]
        for i, m in enumerate(in_window):
            hired[-1 - i] = _add_months(start, m)
        order = np.argsort(hired, kind="stable")
        for pos, j in enumerate(order):
            n = names[k]
            k += 1
            rows.append({
                "region": region,
                "team": f"{region} Team",
                "name": f"{_FIRST_NAMES[n // len(_LAST_NAMES)]} {_LAST_NAMES[n % len(_LAST_NAMES)]}",
                "start_day": hired[j],
                "lead": pos == 0,
                "skill": float(np.round(np.clip(rng.normal(1.0, 0.07), 0.8, 1.2), 3)),
            })
    reps = pd.DataFrame(rows)
    reps.insert(0, "rep_id", _ids("R", len(reps), 2))
    leads = reps.loc[reps["lead"]].set_index("team")["rep_id"]
    reps["manager"] = reps["team"].map(leads).where(~reps["lead"])
    reps["start_date"] = _dates(reps["start_day"].to_numpy())
    return reps


def _intensity(start: int, end: int, origin: int, growth: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Daily intensities from ``origin`` to ``end``.

    Returns the days; "operational time" in years, the cumulative purchase
    intensity (season x weekday, normalised so that the window's first year
    averages 1); and per region the cumulative acquisition intensity (the same
    times the regional trend).

    Under BG/NBD every customer makes on average 1/p orders whatever the pace,
    so buying faster only churns faster: growth has to come from acquiring
    more customers each year, which is what the trend drives.
    """
    days = np.arange(origin, end + 1)
    d64 = days.astype("datetime64[D]")
    month = (d64.astype("datetime64[M]").astype(np.int64) % 12)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    dom = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    base = _SEASON[month] * _WEEKDAY[weekday]
    holiday = ((month == 11) & ((dom == 25) | (dom == 26))) | ((month == 0) & (dom == 1))
    between = (month == 11) & (dom >= 27)
    base = np.where(holiday, base * 0.1, np.where(between, base * 0.5, base))
    first_year = (days >= start) & (days < start + 365)
    base = base / base[first_year].mean()
    years = (days - start) / 365.25
    g = growth + _REGION_GROWTH_OFFSET
    acq = base[None, :] * (1.0 + g[:, None]) ** years[None, :]
    return days, np.cumsum(base) / 365.25, np.cumsum(acq, axis=1)


def _simulate_customers(rng, n_customers: int, reps: pd.DataFrame, start: int, end: int, growth: float):
    """BG/NBD-like customers and their orders (day, value) up to ``end``."""
    # A long warm-up, so that the customer base is settled at the start (the
    # slowest customers live for decades).
    origin = start - int(_WARM_UP_YEARS * 365.25)
    days, cum, acq = _intensity(start, end, origin, growth)
    factor = 4.0
    while True:
        n_cand = int(n_customers * factor)
        region = rng.choice(len(REGIONS), size=n_cand, p=_REGION_SHARE)
        segment = rng.choice(len(SEGMENTS), size=n_cand, p=_SEGMENT_SHARE)
        satisfaction = np.clip(rng.normal(3.9, 0.75, n_cand), 1.0, 5.0)
        rate = rng.gamma(_RATE_SHAPE, _RATE_MEAN / _RATE_SHAPE, n_cand) * _SEGMENT_RATE[segment]  # orders a year
        dropout = rng.beta(*_DROPOUT_BETA, n_cand) * np.exp(1.1 * (3.9 - satisfaction))
        loyal = rng.random(n_cand) < 0.15
        dropout = np.where(loyal, 0.01, np.clip(dropout, 0.01, 0.9))
        mean_value = _SEGMENT_ORDER_VALUE[segment] * rng.gamma(4.0, 1 / 4.0, n_cand)
        # Acquisition (the first order) follows the season and the regional trend.
        acquired = np.empty(n_cand, dtype=np.int64)
        for r in range(len(REGIONS)):
            sel = region == r
            acquired[sel] = np.searchsorted(acq[r], rng.random(sel.sum()) * acq[r, -1])
        acquired = np.minimum(acquired, days.size - 1)
        tau0 = cum[acquired]
        n_total = rng.geometric(dropout)  # purchases before dropping out (the first included)
        horizon = cum[-1] - tau0
        mu = rate * horizon
        n_draw = np.minimum(n_total, np.ceil(mu + 6 * np.sqrt(mu) + 10).astype(np.int64))
        owner = np.repeat(np.arange(n_cand), n_draw)
        gaps = rng.exponential(1.0, owner.size) / rate[owner]
        first = np.concatenate([[0], np.cumsum(n_draw)[:-1]])
        gaps[first] = 0.0
        csum = np.cumsum(gaps)
        tau = csum - np.repeat(csum[first], n_draw) + tau0[owner]
        day_idx = np.searchsorted(cum, tau)
        keep = day_idx < days.size
        owner, day_idx = owner[keep], day_idx[keep]
        order_day = days[day_idx]
        realised = np.bincount(owner, minlength=n_cand)
        in_window = np.bincount(owner[order_day >= start], minlength=n_cand)
        kept = np.flatnonzero(in_window > 0)
        if kept.size >= n_customers:
            break
        factor *= 1.3
    chosen = np.sort(rng.choice(kept, size=n_customers, replace=False))
    first_day = np.full(n_cand, np.iinfo(np.int64).max)
    np.minimum.at(first_day, owner, order_day)
    last_day = np.full(n_cand, np.iinfo(np.int64).min)
    np.maximum.at(last_day, owner, order_day)
    alive = realised < n_total
    # Customer ids in order of the first purchase.
    chosen = chosen[np.lexsort((chosen, first_day[chosen]))]
    new_index = np.full(n_cand, -1)
    new_index[chosen] = np.arange(n_customers)

    cust = pd.DataFrame({
        "customer_id": _ids("C", n_customers),
        "region_idx": region[chosen],
        "segment_idx": segment[chosen],
        "first_day": first_day[chosen],
        "last_day": last_day[chosen],
        "alive": alive[chosen],
        "purchase_rate": np.round(rate[chosen], 4),
        "dropout_probability": np.round(dropout[chosen], 4),
        "mean_order_value": np.round(mean_value[chosen], 2),
        "latent_satisfaction": np.round(satisfaction[chosen], 3),
        "loyal": loyal[chosen],
    })
    cust["region"] = np.array(REGIONS, dtype=object)[cust["region_idx"]]
    cust["segment"] = np.array(SEGMENTS, dtype=object)[cust["segment_idx"]]
    cust["industry"] = np.array(_INDUSTRIES, dtype=object)[
        rng.choice(len(_INDUSTRIES), size=n_customers, p=_INDUSTRY_SHARE)]
    cust["channel_idx"] = _draw(rng, np.cumsum(_SEGMENT_CHANNEL[cust["segment_idx"]], axis=1))
    combos = len(_NAME_STEMS) * len(_NAME_WORDS) * len(_LEGAL_FORMS)
    pick = rng.choice(combos, size=n_customers, replace=n_customers > combos)
    stem = pick // (len(_NAME_WORDS) * len(_LEGAL_FORMS))
    word = (pick // len(_LEGAL_FORMS)) % len(_NAME_WORDS)
    form = pick % len(_LEGAL_FORMS)
    cust["name"] = [f"{_NAME_STEMS[a]} {_NAME_WORDS[b]} {_LEGAL_FORMS[c]}" for a, b, c in zip(stem, word, form)]
    # Which categories each customer leans to.
    cust_pref = rng.dirichlet(np.full(len(CATEGORIES), 1.5), size=n_customers)
    _assign_owners(rng, cust, reps, start)

    sel = new_index[owner] >= 0
    orders = pd.DataFrame({"cust": new_index[owner[sel]], "day": order_day[sel]})
    orders = orders.loc[orders["day"] >= start].drop_duplicates(["cust", "day"])
    orders = orders.sort_values(["day", "cust"], kind="stable").reset_index(drop=True)
    mv = cust["mean_order_value"].to_numpy()[orders["cust"].to_numpy()]
    orders["value"] = mv * rng.gamma(4.0, 0.25, len(orders))
    return cust, cust_pref, orders


def _assign_owners(rng, cust: pd.DataFrame, reps: pd.DataFrame, start: int) -> None:
    """Account owner per customer, with hand-overs to reps hired inside the window."""
    owner = np.empty(len(cust), dtype=object)
    new_owner = np.full(len(cust), None, dtype=object)
    handover = np.full(len(cust), np.iinfo(np.int64).max, dtype=np.int64)  # never
    rep_region = reps["region"].to_numpy()
    rep_start = reps["start_day"].to_numpy()
    rep_lead = reps["lead"].to_numpy()
    rep_ids = reps["rep_id"].to_numpy()
    for r, region in enumerate(REGIONS):
        idx = np.flatnonzero(cust["region_idx"].to_numpy() == r)
        team = np.flatnonzero(rep_region == region)
        # The owner was on the team when the first deal could be worked: from 60
        # days before the first order, and for old accounts from the year
        # before the window (when the pipeline starts).
        acquired = np.maximum(cust["first_day"].to_numpy()[idx] - 60, start - 365)
        eligible = rep_start[team][None, :] <= acquired[:, None]
        recent = (acquired[:, None] - rep_start[team][None, :]) < 365
        w = eligible * np.where(rep_lead[team], 0.6, 1.0)[None, :] * np.where(recent, 1.6, 1.0)
        owner[idx] = rep_ids[team][_draw(rng, np.cumsum(w, axis=1))]
        # New hires take over some accounts of their region during their ramp-up.
        for j in team[rep_start[team] > start]:
            pool = idx[(cust["first_day"].to_numpy()[idx] < rep_start[j])
                       & (cust["last_day"].to_numpy()[idx] > rep_start[j])
                       & (handover[idx] == np.iinfo(np.int64).max)]
            take = pool[rng.random(pool.size) < 0.15]
            new_owner[take] = rep_ids[j]
            handover[take] = rep_start[j] + rng.integers(0, 180, take.size)
    cust["owner_rep_id"] = owner
    cust["new_owner_rep_id"] = new_owner
    cust["handover_day"] = handover


def _owner_at(cust: pd.DataFrame, cust_idx: np.ndarray, day: np.ndarray) -> np.ndarray:
    owner = cust["owner_rep_id"].to_numpy()[cust_idx]
    new = cust["new_owner_rep_id"].to_numpy()[cust_idx]
    moved = cust["handover_day"].to_numpy()[cust_idx] <= day
    return np.where(moved, new, owner)


def _price_at(products: pd.DataFrame, prod: np.ndarray, day: np.ndarray) -> np.ndarray:
    change = products["price_change_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    has = products["price_change_date"].notna().to_numpy()
    after = has[prod] & (day >= change[prod])
    return np.where(after, products["new_list_price"].to_numpy()[prod], products["list_price"].to_numpy()[prod])


def _regular_lines(rng, orders: pd.DataFrame, cust: pd.DataFrame, cust_pref: np.ndarray,
                   products: pd.DataFrame, start: int) -> pd.DataFrame:
    n_orders = len(orders)
    oc = orders["cust"].to_numpy()
    seg = cust["segment_idx"].to_numpy()[oc]
    n_lines = 1 + rng.poisson(_SEGMENT_LINES[seg])
    line_order = np.repeat(np.arange(n_orders), n_lines)
    share = rng.gamma(2.0, 1.0, line_order.size)
    share = share / np.bincount(line_order, weights=share)[line_order]
    value = orders["value"].to_numpy()[line_order] * share
    day = orders["day"].to_numpy()[line_order]
    lc = oc[line_order]
    region = cust["region_idx"].to_numpy()[lc]
    # Product choice: popularity x the customer's category taste x category
    # trend (differing by region) x how well the price fits the line value.
    cat_idx = pd.Categorical(products["category"], categories=CATEGORIES).codes
    trend = np.array([_CATALOG[c][0] for c in CATEGORIES])
    regional = trend[None, :] + rng.normal(0.0, 0.03, (len(REGIONS), len(CATEGORIES)))
    years = (day - start) / 365.25
    list_price = products["list_price"].to_numpy()
    w = (products["popularity"].to_numpy()[None, :]
         * cust_pref[lc][:, cat_idx]
         * np.exp(regional[region][:, cat_idx] * years[:, None])
         * np.exp(-0.5 * ((np.log(list_price)[None, :] - np.log(value)[:, None]) / 1.3) ** 2))
    prod = _draw(rng, np.cumsum(w, axis=1))
    channel = cust["channel_idx"].to_numpy()[oc]
    switch = rng.random(n_orders) < 0.08
    channel = np.where(switch, rng.integers(0, len(CHANNELS), n_orders), channel)
    discount = (_SEGMENT_DISCOUNT[seg] + _CHANNEL_DISCOUNT[channel]
                + rng.choice([0.0, 0.03, 0.05, 0.10], size=n_orders, p=[0.55, 0.2, 0.15, 0.1]))
    unit_price = np.round(_price_at(products, prod, day) * (1 - discount[line_order]), 2)
    quantity = np.maximum(1, np.round(value / unit_price))
    lines = pd.DataFrame({
        "order": line_order, "cust": lc, "day": day, "prod": prod,
        "channel": channel[line_order], "quantity": quantity, "unit_price": unit_price,
    })
    # One line per product and order.
    return (lines.groupby(["order", "prod"], sort=True, as_index=False)
            .agg(cust=("cust", "first"), day=("day", "first"), channel=("channel", "first"),
                 quantity=("quantity", "sum"), unit_price=("unit_price", "first")))


def _simulate_pipeline(rng, cust: pd.DataFrame, reps: pd.DataFrame, start: int, end: int, growth: float):
    """Opportunities with their stage history; deals follow customers who are still buying."""
    # The pipeline starts a year early, so the window opens with deals in flight.
    first_day = start - 365
    n_days = end - first_day + 1
    days = np.arange(first_day, end + 1)
    d64 = days.astype("datetime64[D]")
    month = d64.astype("datetime64[M]").astype(np.int64) % 12
    w = (0.5 + 0.5 * _SEASON[month]) * _WEEKDAY[(days + 3) % 7] * (1 + growth) ** ((days - start) / 365.25)
    n_opps = rng.poisson(_OPPS_PER_CUSTOMER * len(cust) * n_days / 365.25)
    cw = np.cumsum(w)
    created = np.sort(days[np.minimum(np.searchsorted(cw, rng.random(n_opps) * cw[-1], side="right"), n_days - 1)])
    first = cust["first_day"].to_numpy()
    last = cust["last_day"].to_numpy()
    alive = cust["alive"].to_numpy()
    seg = cust["segment_idx"].to_numpy()
    weight = _SEGMENT_DEAL_WEIGHT[seg]
    chosen = np.empty(n_opps, dtype=np.int64)
    for i, d in enumerate(created):
        # A customer is in play from 60 days before its first order (deals bring
        # new logos) until it stops buying.
        ok = (first - 60 <= d) & (alive | (last + 30 >= d))
        cw = np.cumsum(weight * ok)
        chosen[i] = min(np.searchsorted(cw, rng.random() * cw[-1], side="right"), len(cw) - 1)
    cseg = seg[chosen]
    rep_id = _owner_at(cust, chosen, created)
    rep_row = pd.Index(reps["rep_id"]).get_indexer(rep_id)
    skill = reps["skill"].to_numpy()[rep_row]
    tenure = created - reps["start_day"].to_numpy()[rep_row]
    skill = skill * np.where(tenure < 180, 0.85, 1.0)
    amount = np.maximum(500, np.round(_SEGMENT_DEAL[cseg] * rng.lognormal(0.0, 0.5, n_opps), -2))

    n_open = len(STAGES) - 2
    entered = np.full((n_opps, len(STAGES)), np.iinfo(np.int64).min, dtype=np.int64)
    t = created.astype(np.int64).copy()
    entered[:, 0] = t
    active = np.ones(n_opps, dtype=bool)
    for s in range(n_open):
        mean_days = _STAGE_DAYS[s] * _SEGMENT_CYCLE[cseg]
        dur = np.ceil(rng.gamma(2.0, mean_days / 2.0)).astype(np.int64)
        p = np.clip(_STAGE_ADVANCE[s] * _SEGMENT_CONVERSION[cseg] * skill, 0, 0.98)
        advance = rng.random(n_opps) < p
        lose = active & ~advance
        # Lost deals linger a little longer before someone closes them.
        entered[lose, len(STAGES) - 1] = t[lose] + np.ceil(dur[lose] * 1.3).astype(np.int64)
        active &= advance
        t = t + dur
        nxt = s + 1 if s + 1 < n_open else len(STAGES) - 2  # contract -> won
        entered[active, nxt] = t[active]
    # Truncate at the end date: later events have not happened yet.
    entered = np.where(entered > end, np.iinfo(np.int64).min, entered)
    happened = entered != np.iinfo(np.int64).min
    last_stage = np.where(happened, np.arange(len(STAGES))[None, :], -1).max(axis=1)
    last_entered = entered[np.arange(n_opps), last_stage]
    closed = last_stage >= len(STAGES) - 2
    status = np.where(~closed, "open", np.where(last_stage == len(STAGES) - 2, "won", "lost"))
    remaining = np.array([_STAGE_DAYS[s:].sum() for s in range(n_open)] + [0.0, 0.0])
    expected = last_entered + np.ceil(remaining[last_stage] * _SEGMENT_CYCLE[cseg]).astype(np.int64)
    close_day = np.where(closed, last_entered, np.maximum(expected, end + 7))

    # Deals closed before the window are not part of it.
    keep = ~(closed & (close_day < start))
    opp_ids = _ids("OP", int(keep.sum()), 5)
    opps = pd.DataFrame({
        "opportunity_id": opp_ids,
        "cust": chosen[keep],
        "customer_id": cust["customer_id"].to_numpy()[chosen[keep]],
        "rep_id": rep_id[keep],
        "amount": amount[keep],
        "created_day": created[keep],
        "stage": np.array(STAGES, dtype=object)[last_stage[keep]],
        "status": status[keep],
        "close_day": close_day[keep],
    })
    oi, si = np.nonzero(happened[keep])
    entered = entered[keep]
    history = pd.DataFrame({"opportunity_id": opp_ids[oi], "stage_idx": si, "day": entered[oi, si]})
    history = history.sort_values(["opportunity_id", "day", "stage_idx"], kind="stable").reset_index(drop=True)
    return opps, history


def _deal_lines(rng, opps: pd.DataFrame, cust: pd.DataFrame, products: pd.DataFrame, end: int) -> pd.DataFrame:
    """Order lines of won deals, booked on the close date, adding up to the deal amount."""
    won = opps.loc[(opps["status"] == "won") & (opps["close_day"] <= end)]
    cats = list(_DEAL_CATEGORY_SHARE)
    cat_p = np.array(list(_DEAL_CATEGORY_SHARE.values()))
    pcat = products["category"].to_numpy()
    pop = products["popularity"].to_numpy()
    rows = []
    for k, (c, day, amount) in enumerate(zip(won["cust"], won["close_day"], won["amount"])):
        n = 1 + rng.binomial(3, 0.4)
        shares = amount * rng.dirichlet(np.full(n, 2.0))
        price = _price_at(products, np.arange(len(products)), np.full(len(products), day))
        picked: dict[int, list[float]] = {}
        for share in shares:
            cat = cats[rng.choice(len(cats), p=cat_p)]
            cand = np.flatnonzero((pcat == cat) & (price <= share))
            if cand.size == 0:
                cand = np.flatnonzero(pcat == cat)
                cand = cand[[np.argmin(price[cand])]]
            p = int(rng.choice(cand, p=pop[cand] / pop[cand].sum()))
            picked.setdefault(p, []).append(share)
        items = sorted((p, sum(v)) for p, v in picked.items())
        done = 0.0
        for i, (p, value) in enumerate(items):
            qty = max(1.0, math.ceil(value / price[p]))
            if i == len(items) - 1:
                value = amount - done  # the last line makes the order add up to the deal
            unit = round(value / qty, 2)
            done += round(qty * unit, 2)
            rows.append((k, c, day, p, qty, unit))
    lines = pd.DataFrame(rows, columns=["deal", "cust", "day", "prod", "quantity", "unit_price"])
    ch = cust["channel_idx"].to_numpy()[lines["cust"].to_numpy()] if len(lines) else np.array([], int)
    lines["channel"] = np.where(ch == 1, 1, 0)  # partner deals stay with the partner, else direct
    lines["rep_id"] = won["rep_id"].to_numpy()[lines["deal"].to_numpy()] if len(lines) else []
    return lines


def _returns(rng, lines: pd.DataFrame, cust: pd.DataFrame, return_rate: float, end: int) -> pd.DataFrame:
    """Credit-note lines for a share of the sold lines (more often for unhappy customers)."""
    n_ret = int(round(return_rate * len(lines) / (1 - return_rate)))
    if n_ret == 0:
        return lines.iloc[:0].copy()
    sat = cust["latent_satisfaction"].to_numpy()[lines["cust"].to_numpy()]
    w = np.where(sat < 3.0, 2.0, 1.0)
    pick = np.sort(rng.choice(len(lines), size=min(n_ret, len(lines)), replace=False, p=w / w.sum()))
    ret = lines.iloc[pick].copy()
    ret["day"] = ret["day"].to_numpy() + rng.integers(3, 45, len(ret))
    q = ret["quantity"].to_numpy()
    ret["quantity"] = -np.ceil(q * rng.uniform(0.05, 1.0, len(ret)))
    return ret.loc[ret["day"] <= end]


def _transactions(rng, cust, cust_pref, orders, products, opps, start, end, return_rate):
    regular = _regular_lines(rng, orders, cust, cust_pref, products, start)
    regular["kind"] = 0
    regular["rep_id"] = _owner_at(cust, regular["cust"].to_numpy(), regular["day"].to_numpy())
    deals = _deal_lines(rng, opps, cust, products, end)
    deals["kind"] = 1
    deals = deals.rename(columns={"deal": "order"})
    sold = pd.concat([regular, deals], ignore_index=True)
    ret = _returns(rng, sold, cust, return_rate, end)
    ret["kind"] = 2
    # Order numbers in date order; each return is its own credit note.
    sold_orders = sold[["kind", "order", "day", "cust"]].drop_duplicates(["kind", "order"])
    sold_orders = sold_orders.sort_values(["day", "cust", "kind", "order"], kind="stable")
    sold_orders["order_id"] = _ids("SO", len(sold_orders), 6)
    sold = sold.merge(sold_orders[["kind", "order", "order_id"]], on=["kind", "order"], how="left")
    ret = ret.sort_values(["day", "cust", "prod"], kind="stable")
    ret["order_id"] = _ids("CN", len(ret), 5)
    lines = pd.concat([sold, ret], ignore_index=True)
    lines["revenue"] = np.round(lines["quantity"].to_numpy() * lines["unit_price"].to_numpy(), 2)
    c = lines["cust"].to_numpy()
    p = lines["prod"].to_numpy()
    out = pd.DataFrame({
        "order_date": _dates(lines["day"].to_numpy()),
        "order_id": lines["order_id"].to_numpy(),
        "customer_id": cust["customer_id"].to_numpy()[c],
        "product_id": products["product_id"].to_numpy()[p],
        "category": products["category"].to_numpy()[p],
        "region": cust["region"].to_numpy()[c],
        "channel": np.array(CHANNELS, dtype=object)[lines["channel"].to_numpy().astype(int)],
        "rep_id": lines["rep_id"].to_numpy(),
        "quantity": lines["quantity"].to_numpy(dtype=float),
        "unit_price": lines["unit_price"].to_numpy(dtype=float),
        "revenue": lines["revenue"].to_numpy(dtype=float),
    })
    out = out.sort_values(["order_date", "order_id", "product_id"], kind="stable").reset_index(drop=True)
    return out


def _feedback(rng, transactions: pd.DataFrame, cust: pd.DataFrame, end: int) -> pd.DataFrame:
    """Surveys after some orders, and support tickets (half the returns raise one)."""
    cid = pd.Index(cust["customer_id"])
    sat = cust["latent_satisfaction"].to_numpy()
    orders = transactions.loc[transactions["revenue"] > 0, ["order_id", "order_date", "customer_id"]]
    orders = orders.drop_duplicates("order_id")
    o_day = orders["order_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    o_cust = cid.get_indexer(orders["customer_id"])

    survey = rng.random(len(orders)) < 0.07
    s_day = o_day[survey] + rng.integers(2, 15, survey.sum())
    s_cust = o_cust[survey]
    s_score = np.clip(np.round(sat[s_cust] + rng.normal(0, 0.8, s_cust.size)), 1, 5)

    ticket = rng.random(len(orders)) < 0.04
    t_day = o_day[ticket] + rng.integers(1, 30, ticket.sum())
    t_cust = o_cust[ticket]
    t_type = rng.choice(len(_ISSUE_TYPES), size=t_cust.size, p=_ISSUE_SHARE)
    returns = transactions.loc[transactions["revenue"] < 0].drop_duplicates("order_id")
    returns = returns.loc[rng.random(len(returns)) < 0.5]  # half the returns come with a complaint
    r_day = returns["order_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    r_cust = cid.get_indexer(returns["customer_id"])
    t_day = np.concatenate([t_day, r_day - rng.integers(0, 3, r_day.size)])
    t_cust = np.concatenate([t_cust, r_cust])
    t_type = np.concatenate([t_type, np.full(r_cust.size, _ISSUE_TYPES.index("product_defect"))])
    # Unhappy customers wait longer, and say so.
    slow = np.exp(0.3 * (3.9 - sat[t_cust]))
    t_days = np.ceil(rng.gamma(1.5, _ISSUE_DAYS[t_type] * slow / 1.5)).astype(np.int64)
    t_resolved = t_day + t_days
    t_answer = rng.random(t_cust.size) < 0.6
    t_score = np.clip(np.round(sat[t_cust] - 0.3 - 0.05 * t_days + rng.normal(0, 0.8, t_cust.size)), 1, 5)
    t_score = np.where(t_answer & (t_resolved <= end), t_score, np.nan)

    fb = pd.DataFrame({
        "customer_id": np.concatenate([cust["customer_id"].to_numpy()[s_cust], cust["customer_id"].to_numpy()[t_cust]]),
        "day": np.concatenate([s_day, t_day]),
        "satisfaction": np.concatenate([s_score, t_score]),
        "issue_type": np.concatenate([np.full(s_cust.size, None, dtype=object),
                                      np.array(_ISSUE_TYPES, dtype=object)[t_type]]),
        "is_ticket": np.concatenate([np.zeros(s_cust.size, bool), np.ones(t_cust.size, bool)]),
        "resolved_day": np.concatenate([np.full(s_cust.size, -1), t_resolved]),
    })
    fb = fb.loc[fb["day"] <= end].sort_values(["day", "customer_id", "is_ticket"], kind="stable")
    fb = fb.reset_index(drop=True)
    n_tickets = int(fb["is_ticket"].sum())
    ticket_id = np.full(len(fb), None, dtype=object)
    ticket_id[fb["is_ticket"].to_numpy()] = _ids("TK", n_tickets, 5)
    resolved = fb["is_ticket"].to_numpy() & (fb["resolved_day"].to_numpy() <= end)
    return pd.DataFrame({
        "customer_id": fb["customer_id"].to_numpy(),
        "date": _dates(fb["day"].to_numpy()),
        "satisfaction": fb["satisfaction"].to_numpy(dtype=float),
        "issue_type": fb["issue_type"].to_numpy(),
        "ticket_id": ticket_id,
        "resolved_at": _dates(np.where(resolved, fb["resolved_day"], 0)).where(resolved),
    })


def _targets(rng, transactions: pd.DataFrame, reps: pd.DataFrame, start: int, end: int, growth: float) -> pd.DataFrame:
    """Monthly revenue targets per company, region and rep for each year after a full year of actuals."""
    t = transactions
    month = t["order_date"].dt.to_period("M").dt.to_timestamp()
    t0, t1 = pd.Timestamp(np.datetime64(start, "D")), pd.Timestamp(np.datetime64(end, "D"))
    first_year = t0.year if (t0.month, t0.day) == (1, 1) else t0.year + 1  # first full year of actuals
    last_year = t1.year
    rows = []
    by_region = t.groupby([month.rename("month"), t["region"]])["revenue"].sum()
    by_rep = t.groupby([month.rename("month"), t["rep_id"]])["revenue"].sum()
    rep_start = reps.set_index("rep_id")["start_date"]
    rep_region = reps.set_index("rep_id")["region"]
    for year in range(first_year + 1, last_year + 1):
        prev = pd.date_range(f"{year - 1}-01-01", periods=12, freq="MS")
        months = pd.date_range(f"{year}-01-01", periods=12, freq="MS")
        for region in REGIONS:
            actual = np.array([by_region.get((m, region), 0.0) for m in prev])
            plan = actual.sum() * (1 + growth + 0.02 + rng.normal(0, 0.035))
            phase = 0.7 * actual / actual.sum() + 0.3 / 12
            region_target = np.round(plan * phase, -2)
            rows += [(m, "region", region, v) for m, v in zip(months, region_target)]
            team = rep_region.index[rep_region == region]
            # Productivity from last year's revenue per active month, shrunk toward the team mean.
            prod = []
            for r in team:
                active = [m for m in prev if rep_start[r] <= m]
                rev = sum(by_rep.get((m, r), 0.0) for m in active)
                prod.append(rev / len(active) if active else np.nan)
            prod = np.array(prod)
            mean = np.nanmean(prod) if np.isfinite(prod).any() else 1.0
            prod = np.where(np.isfinite(prod), 0.5 + 0.5 * prod / mean, 1.0)
            for k, m in enumerate(months):
                tenure = np.array([(m.year - rep_start[r].year) * 12 + m.month - rep_start[r].month for r in team])
                capacity = np.where(tenure < 0, 0.0, np.minimum(1.0, (tenure + 1) / 6)) * prod
                share = capacity / capacity.sum()
                # Reps not hired yet get no target row.
                rows += [(m, "rep", r, v) for r, v, c in zip(team, np.round(region_target[k] * share, -1), capacity)
                         if c > 0]
        region_rows = [r for r in rows if r[1] == "region" and r[0].year == year]
        company = pd.DataFrame(region_rows, columns=["period", "level", "key", "value"]).groupby("period")["value"].sum()
        rows += [(m, "company", "all", float(v)) for m, v in company.items()]
    out = pd.DataFrame(rows, columns=["period", "level", "key", "value"])
    out.insert(3, "metric", "revenue")
    level_rank = out["level"].map({lv: i for i, lv in enumerate(("company", "region", "rep"))})
    out = out.assign(_r=level_rank).sort_values(["period", "_r", "key"], kind="stable").drop(columns="_r")
    out["period"] = out["period"].astype("datetime64[ns]")
    out["value"] = out["value"].astype(float)
    return out.reset_index(drop=True)


def _market(rng, transactions: pd.DataFrame, start: int, end: int, growth: float) -> pd.DataFrame:
    """Monthly market size per region, with our share drifting around 10-20 %."""
    months = _month_start_days(start, end)
    ours = transactions.groupby([transactions["order_date"].dt.to_period("M").dt.to_timestamp(), "region"])["revenue"].sum()
    month_ts = months.astype("datetime64[D]")
    rows = []
    for r, region in enumerate(REGIONS):
        first = np.array([ours.get((pd.Timestamp(m), region), 0.0) for m in month_ts[:12]])
        share0 = rng.uniform(0.11, 0.18)
        mgrowth = growth + _REGION_GROWTH_OFFSET[r] - 0.03 + rng.normal(0, 0.01)
        base = (first / _SEASON[(months[:12].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)) % 12]).mean() / share0
        mo = months.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        years = (months - start) / 365.25
        size = base * (0.6 + 0.4 * _SEASON[mo]) * (1 + mgrowth) ** years * rng.lognormal(0, 0.04, months.size)
        size = np.round(size, -3)
        our = np.array([ours.get((pd.Timestamp(m), region), 0.0) for m in month_ts])
        rows.append(pd.DataFrame({
            "period": _dates(months), "region": region, "market_size": size,
            "competitor_sales": np.round(size - our, -3),
        }))
    out = pd.concat(rows, ignore_index=True)
    return out.sort_values(["period", "region"], kind="stable").reset_index(drop=True)


@functools.lru_cache(maxsize=4)
def _simulate(seed: int, start: str, end: str, n_customers: int, growth: float, return_rate: float) -> dict:
    s, e = _day(start), _day(end)
    products = _gen_products(_rng(seed, 1), s, e)
    reps = _gen_reps(_rng(seed, 2), s, e)
    cust, cust_pref, orders = _simulate_customers(_rng(seed, 3), n_customers, reps, s, e, growth)
    opps, history = _simulate_pipeline(_rng(seed, 4), cust, reps, s, e, growth)
    transactions = _transactions(_rng(seed, 5), cust, cust_pref, orders, products, opps, s, e, return_rate)
    feedback = _feedback(_rng(seed, 6), transactions, cust, e)
    targets = _targets(_rng(seed, 7), transactions, reps, s, e, growth)
    market = _market(_rng(seed, 8), transactions, s, e, growth)

    customers = pd.DataFrame({
        "customer_id": cust["customer_id"],
        "name": cust["name"],
        "region": cust["region"],
        "segment": cust["segment"],
        "industry": cust["industry"],
        "first_order_date": _dates(cust["first_day"].to_numpy()),
        # Ground truth of the simulation (dropped unless truth=True).
        "purchase_rate": cust["purchase_rate"],
        "dropout_probability": cust["dropout_probability"],
        "mean_order_value": cust["mean_order_value"],
        "latent_satisfaction": cust["latent_satisfaction"],
        "loyal": cust["loyal"],
        "alive": cust["alive"],
        "owner_rep_id": cust["owner_rep_id"],
    })
    opportunities = pd.DataFrame({
        "opportunity_id": opps["opportunity_id"],
        "customer_id": opps["customer_id"],
        "rep_id": opps["rep_id"],
        "amount": opps["amount"].astype(float),
        "created_date": _dates(opps["created_day"].to_numpy()),
        "stage": opps["stage"],
        "status": opps["status"],
        "close_date": _dates(opps["close_day"].to_numpy()),
    })
    stage_history = pd.DataFrame({
        "opportunity_id": history["opportunity_id"],
        "stage": np.array(STAGES, dtype=object)[history["stage_idx"].to_numpy()],
        "entered_at": _dates(history["day"].to_numpy()),
    })
    tables = {
        "transactions": transactions,
        "customers": customers,
        "opportunities": opportunities,
        "stage_history": stage_history,
        "reps": _reps_table(reps),
        "targets": targets,
        "feedback": feedback,
        "market": market,
        "products": products,
    }
    return {name: _with_dtypes(df, name) for name, df in tables.items()}


def _reps_table(reps: pd.DataFrame) -> pd.DataFrame:
    return reps[["rep_id", "name", "team", "region", "manager", "start_date", "skill"]]


_TRUTH_COLUMNS = {
    "customers": ("purchase_rate", "dropout_probability", "mean_order_value",
                  "latent_satisfaction", "loyal", "alive", "owner_rep_id"),
    "reps": ("skill",),
}


def _with_dtypes(df: pd.DataFrame, table: str) -> pd.DataFrame:
    """Cast the schema columns to the schema dtypes (other columns keep theirs)."""
    if table not in TABLES:
        return df.reset_index(drop=True)
    dtypes = TABLES[table].dtypes()
    out = df.copy()
    for col, dtype in dtypes.items():
        if col in out.columns:
            out[col] = out[col].astype(dtype)
    return out.reset_index(drop=True)


def _get(table: str, seed, start, end, n_customers, growth, return_rate, truth=False) -> pd.DataFrame:
    opts = _check_options(seed, start, end, n_customers, growth, return_rate)
    df = _simulate(*opts)[table]
    if not truth:
        df = df.drop(columns=list(_TRUTH_COLUMNS.get(table, ())))
    return df.copy()


# --- public generators -----------------------------------------------------------

_COMMON_DOC = """
    Parameters
    ----------
    seed : int, default 42
        Seed of every random draw; the same seed gives the same data.
    start, end : date-like, default "2023-01-01", "2025-12-31"
        First and last day of the simulated window.
    n_customers : int, default 3000
        Customers with at least one order in the window.
    growth : float, default 0.08
        Overall yearly growth; regions differ from it by -5 to +6 points.
    return_rate : float, default 0.02
        Share of transaction lines that are returns (negative lines).
"""


def make_products(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END) -> pd.DataFrame:
    """The product catalogue: 30 products in 5 categories with list prices and price changes.

    Not a table of the data model (transactions carry ``product_id`` and
    ``category``), but handy to check price effects.

    Returns
    -------
    DataFrame
        ``product_id``, ``product_name``, ``category``, ``list_price`` (at the
        start), ``price_change_date`` (NaT when the price never changed),
        ``new_list_price`` (from that date), ``popularity`` (relative weight in
        the simulation).

    Examples
    --------
    >>> p = make_products()
    >>> len(p), p["category"].nunique()
    (30, 5)
    """
    # Products and reps come first in the simulation and from their own
    # streams, so they need not wait for the rest.
    seed, start, end, *_ = _check_options(seed, start, end, 3000, 0.08, 0.02)
    return _with_dtypes(_gen_products(_rng(seed, 1), _day(start), _day(end)), "products")


def make_reps(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
              truth: bool = False) -> pd.DataFrame:
    """The sales organisation: 20 reps in 5 regional teams; the first of each team leads it.

    Four reps are hired inside the window (three in its last year), so that
    ramp-up can be seen.

    Returns
    -------
    DataFrame
        The ``reps`` table: ``rep_id``, ``name``, ``team``, ``region``,
        ``manager`` (the team lead's ``rep_id``; missing for the leads),
        ``start_date`` (hire date). With ``truth=True`` also ``skill``, the
        multiplier of the rep's stage conversion rates.

    Examples
    --------
    >>> reps = make_reps()
    >>> len(reps), reps["team"].nunique()
    (20, 5)
    """
    seed, start, end, *_ = _check_options(seed, start, end, 3000, 0.08, 0.02)
    reps = _with_dtypes(_reps_table(_gen_reps(_rng(seed, 2), _day(start), _day(end))), "reps")
    return reps if truth else reps.drop(columns=list(_TRUTH_COLUMNS["reps"]))


def make_customers(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
                   n_customers: int = 3000, growth: float = 0.08, return_rate: float = 0.02,
                   truth: bool = False) -> pd.DataFrame:
    """Customers with at least one order in the window.

    ``first_order_date`` is the customer's very first order, which for
    customers won before ``start`` lies before the transactions window.
    {common}
    truth : bool, default False
        Also return the simulation's ground truth, to check fitted models
        against: ``purchase_rate`` (orders a year at the pace of the
        window's first year), ``dropout_probability`` (after each order),
        ``mean_order_value`` (aimed at, before whole units and discounts),
        ``latent_satisfaction`` (1-5), ``loyal``, ``alive`` (has not
        dropped out by ``end``), ``owner_rep_id`` (account owner before any
        hand-over to a new hire).

    Returns
    -------
    DataFrame
        The ``customers`` table: ``customer_id``, ``name``, ``region``,
        ``segment``, ``industry``, ``first_order_date``.
    """
    return _get("customers", seed, start, end, n_customers, growth, return_rate, truth)


def make_transactions(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
                      n_customers: int = 3000, growth: float = 0.08, return_rate: float = 0.02) -> pd.DataFrame:
    """Daily order lines: repeat orders of the customers, won deals and returns.
    {common}
    Returns
    -------
    DataFrame
        The ``transactions`` table: ``order_date``, ``order_id`` (``SO...`` for
        orders, ``CN...`` for credit notes), ``customer_id``, ``product_id``,
        ``category``, ``region``, ``channel``, ``rep_id``, ``quantity``,
        ``unit_price``, ``revenue`` (= quantity x unit_price, negative for
        returns). Sorted by date, order and product.

    Examples
    --------
    >>> t = make_transactions(n_customers=200, end="2023-12-31")
    >>> bool((t["revenue"] < 0).any()), sorted(t["channel"].unique())
    (True, ['direct', 'online', 'partner'])
    """
    return _get("transactions", seed, start, end, n_customers, growth, return_rate)


def make_opportunities(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
                       n_customers: int = 3000, growth: float = 0.08,
                       return_rate: float = 0.02) -> pd.DataFrame:
    """The pipeline: one row per opportunity in its stage at ``end``.
    {common}
    Returns
    -------
    DataFrame
        The ``opportunities`` table: ``opportunity_id``, ``customer_id``,
        ``rep_id``, ``amount``, ``created_date``, ``stage``, ``status``
        (open, won or lost), ``close_date`` (expected close while open).
    """
    return _get("opportunities", seed, start, end, n_customers, growth, return_rate)


def make_stage_history(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
                       n_customers: int = 3000, growth: float = 0.08,
                       return_rate: float = 0.02) -> pd.DataFrame:
    """When each opportunity entered each stage (the opportunities' history).
    {common}
    Returns
    -------
    DataFrame
        The ``stage_history`` table: ``opportunity_id``, ``stage``,
        ``entered_at``; stages in process order with non-decreasing dates.
    """
    return _get("stage_history", seed, start, end, n_customers, growth, return_rate)


def make_feedback(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
                  n_customers: int = 3000, growth: float = 0.08, return_rate: float = 0.02) -> pd.DataFrame:
    """Survey answers after some orders and support tickets (half the returns raise one).
    {common}
    Returns
    -------
    DataFrame
        The ``feedback`` table: ``customer_id``, ``date``, ``satisfaction``
        (1-5, missing when not answered), ``issue_type`` and ``ticket_id``
        (missing for surveys), ``resolved_at`` (missing for surveys and
        tickets still open at ``end``).
    """
    return _get("feedback", seed, start, end, n_customers, growth, return_rate)


def make_market(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
                n_customers: int = 3000, growth: float = 0.08, return_rate: float = 0.02) -> pd.DataFrame:
    """Monthly market size per region; our share starts between 11 % and 18 %.
    {common}
    Returns
    -------
    DataFrame
        The ``market`` table: ``period`` (month start), ``region``,
        ``market_size``, ``competitor_sales`` (market size minus our net
        revenue), rounded to thousands.
    """
    return _get("market", seed, start, end, n_customers, growth, return_rate)


def make_targets(*, seed: int = 42, start: object = DEFAULT_START, end: object = DEFAULT_END,
                 n_customers: int = 3000, growth: float = 0.08, return_rate: float = 0.02) -> pd.DataFrame:
    """Past monthly revenue targets at company, region and rep level.

    For every calendar year after the first full one: the region's previous
    year plus a planned growth (``growth`` + 2 points, give or take 3.5),
    phased like the previous year, rounded to hundreds; rep targets split it
    by tenure (six-month ramp) and last year's productivity, rounded to tens;
    the company target is the sum of the regions.
    {common}
    Returns
    -------
    DataFrame
        The ``targets`` table: ``period``, ``level`` (company, region or rep),
        ``key`` ("all", region name or rep id), ``metric`` ("revenue"),
        ``value``.
    """
    return _get("targets", seed, start, end, n_customers, growth, return_rate)


def _fill_doc(doc: str) -> str:
    common = "\n    " + _COMMON_DOC.strip()
    doc = doc.replace("    {common}\n    truth", common + "\n    truth")
    return doc.replace("    {common}\n", common + "\n\n")


for _f in (make_customers, make_transactions, make_opportunities, make_stage_history,
           make_feedback, make_market, make_targets):
    _f.__doc__ = _fill_doc(_f.__doc__)
del _f


def make_demo(seed: int = 42, *, start: object = DEFAULT_START, end: object = DEFAULT_END,
              n_customers: int = 3000, growth: float = 0.08, return_rate: float = 0.02,
              truth: bool = False) -> dict[str, pd.DataFrame]:
    """Every table of the data model for the demo company.
    {common}
    truth : bool, default False
        Keep the simulation's ground-truth columns (see :func:`make_customers`
        and :func:`make_reps`) and add a ``products`` table.

    Returns
    -------
    dict of str to DataFrame
        ``transactions``, ``customers``, ``opportunities``, ``stage_history``,
        ``reps``, ``targets``, ``feedback``, ``market``, with the columns and
        dtypes of :mod:`salesplan.schema`.

    Examples
    --------
    >>> demo = make_demo(n_customers=200, end="2023-12-31")
    >>> sorted(demo) == sorted(["transactions", "customers", "opportunities", "stage_history",
    ...                         "reps", "targets", "feedback", "market"])
    True
    """
    opts = _check_options(seed, start, end, n_customers, growth, return_rate)
    tables = _simulate(*opts)
    names = list(_TABLE_ORDER) + (["products"] if truth else [])
    out = {}
    for name in names:
        df = tables[name]
        if not truth:
            df = df.drop(columns=list(_TRUTH_COLUMNS.get(name, ())))
        out[name] = df.copy()
    return out


make_demo.__doc__ = _fill_doc(make_demo.__doc__)


# --- files -----------------------------------------------------------------------

def _format_column(s: pd.Series) -> pd.Series:
    """Text of one column: ISO dates, integers without decimals, money with two."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.strftime("%Y-%m-%d").astype(object).where(s.notna(), "")
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy(dtype=float)
        finite = np.isfinite(v)
        if np.all(v[finite] == np.round(v[finite])):
            text = np.array([f"{x:.0f}" for x in v], dtype=object)
        else:
            text = np.array([f"{x:.2f}" for x in v], dtype=object)
        text[~finite] = ""
        # "-0" would read back fine but looks odd.
        text[text == "-0"] = "0"
        return pd.Series(text, index=s.index)
    return s.astype(object).where(s.notna(), "")


def write_demo(path: str | Path = DEMO_DIR, seed: int = 42, **options) -> list[Path]:
    """Write every table as ``<table>.csv`` under ``path``, reproducibly.

    The files are UTF-8 with LF line endings, rows in a fixed order, dates as
    ``YYYY-MM-DD``, whole numbers without decimals and other numbers with two,
    so the same seed and options give byte-identical files.

    Parameters
    ----------
    path : str or Path, default ``data/demo`` of the repository
        Folder to write to (created if needed).
    seed : int, default 42
        Seed, as in :func:`make_demo`.
    **options
        Other keyword arguments of :func:`make_demo` (``start``, ``end``,
        ``n_customers``, ``growth``, ``return_rate``).

    Returns
    -------
    list of Path
        The files written, in table order.
    """
    if "truth" in options:
        raise SalesplanError("write_demo writes the data-model tables only; drop truth=..., "
                             "and use make_demo(truth=True) for the ground truth.")
    tables = make_demo(seed, **options)
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        text = pd.DataFrame({c: _format_column(df[c]) for c in df.columns})
        target = folder / f"{name}.csv"
        with open(target, "w", encoding="utf-8", newline="") as fh:
            text.to_csv(fh, index=False, lineterminator="\n")
        written.append(target)
    return written


def _read_table(file: Path, schema: TableSchema) -> pd.DataFrame:
    if not file.is_file():
        raise SalesplanDataError(
            f"Demo table {schema.name!r} not found: {file} does not exist. "
            f"Regenerate the demo files with `python -m salesplan.datasets --out {file.parent}` "
            "(or `make demo-data`), or pass path= pointing at a folder that has them."
        )
    kinds = {c.name: c.kind for c in schema.columns}
    df = pd.read_csv(file, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8")
    check_columns(df, schema.required, name=str(file),
                  hint="The demo files are out of date; regenerate them with `make demo-data`.")
    for col in df.columns:
        kind = kinds.get(col)
        if kind == "date":
            df[col] = pd.to_datetime(df[col], format="%Y-%m-%d").astype("datetime64[ns]")
        elif kind == "float":
            df[col] = df[col].astype("float64")
        elif kind == "int":
            df[col] = df[col].astype("float64").astype("Int64")
    return _with_dtypes(df, schema.name)


def load_demo(table: str | None = None, *, path: str | Path | None = None) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Read the demo company's tables from ``data/demo`` with the schema's dtypes.

    Parameters
    ----------
    table : str, optional
        One table of the data model (``"transactions"``, ``"customers"``...).
        All tables when omitted.
    path : str or Path, optional
        Folder holding the ``<table>.csv`` files; default ``data/demo`` at the
        root of the repository this package lives in.

    Returns
    -------
    DataFrame or dict of str to DataFrame
        The table, or every table by name. Dates are ``datetime64[ns]``,
        numbers ``float64``, text ``string``.

    Examples
    --------
    >>> reps = load_demo("reps")
    >>> list(reps.columns)
    ['rep_id', 'name', 'team', 'region', 'manager', 'start_date']
    """
    folder = Path(path) if path is not None else DEMO_DIR
    if table is not None:
        return _read_table(folder / f"{table}.csv", get_schema(table))
    return {name: _read_table(folder / f"{name}.csv", schema) for name, schema in TABLES.items()}


# --- documentation of the data model ----------------------------------------------

_DOC_BEGIN = "<!-- BEGIN columns: {name} (generated from salesplan.schema; run `python -m salesplan.datasets --docs docs/data-model.md`) -->"
_DOC_END = "<!-- END columns: {name} -->"


def _example_aliases(aliases: tuple[str, ...], n_latin: int, n_cjk: int) -> list[str]:
    cjk = [a for a in aliases if any(ch >= "\u2e80" for ch in a)]
    latin = [a for a in aliases if a not in cjk]
    return latin[:n_latin] + cjk[:n_cjk]


def schema_markdown(table: str, *, n_aliases: int = 6) -> str:
    """The markdown table of ``table``'s columns, as docs/data-model.md shows it.

    Parameters
    ----------
    table : str
        A table of :data:`salesplan.schema.TABLES`.
    n_aliases : int, default 6
        How many header aliases to show per column (two of them Chinese when
        the column has Chinese aliases).

    Returns
    -------
    str
        A markdown table with the columns ``column``, ``kind``, ``required``,
        ``description``, ``example aliases``.

    Examples
    --------
    >>> print(schema_markdown("reps").splitlines()[2])
    | `rep_id` | string | yes | Rep identifier. | rep, rep id, sales rep, salesperson, 销售员, 销售 |
    """
    schema = get_schema(table)
    lines = ["| column | kind | required | description | example aliases |",
             "|---|---|---|---|---|"]
    for c in schema.columns:
        shown = _example_aliases(c.aliases, n_aliases - min(2, n_aliases // 2), min(2, n_aliases // 2))
        aliases = ", ".join(a.replace("|", "\\|") for a in shown)
        desc = c.description.replace("|", "\\|")
        lines.append(f"| `{c.name}` | {c.kind} | {'yes' if c.required else 'no'} | {desc} | {aliases} |")
    return "\n".join(lines)


def update_data_model_docs(path: str | Path) -> bool:
    """Refresh the generated column tables in a markdown file; True when it changed.

    Each table's block lies between ``<!-- BEGIN columns: <table> ...-->`` and
    ``<!-- END columns: <table> -->`` markers; the text around them is kept.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = text
    for name in TABLES:
        begin = re.search(rf"<!-- BEGIN columns: {name}\b[^>]*-->", new)
        j = new.find(_DOC_END.format(name=name))
        if begin is None or j < begin.end():
            raise SalesplanError(
                f"{path} has no generated block for table {name!r}: add the two lines\n"
                f"{_DOC_BEGIN.format(name=name)}\n{_DOC_END.format(name=name)}\n"
                "where its column table belongs, then run this again."
            )
        new = new[: begin.end()] + "\n" + schema_markdown(name) + "\n" + new[j:]
    if new != text:
        path.write_text(new, encoding="utf-8", newline="\n")
    return new != text


# --- large synthetic files, written in chunks --------------------------------------

#: Order lines per chunk of :func:`write_transactions` (about 100 MB of memory each).
CHUNK_ROWS = 1_000_000
_FILE_FORMATS = ("parquet", "csv")
_CATEGORY_SHARE = np.array([0.30, 0.22, 0.18, 0.18, 0.12])  # Hardware..Accessories, as _CATALOG
_REPS_PER_REGION = 6


def _big_company(rng: np.random.Generator, n_customers: int, start: int, end: int, growth: float):
    """Customers (region, segment, purchase weight, first day, order value) and the daily calendar."""
    days = np.arange(start, end + 1)
    d64 = days.astype("datetime64[D]")
    month = d64.astype("datetime64[M]").astype(np.int64) % 12
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    years = (days - start) / 365.25
    # Orders per day: season x weekday x growth; customers arrive with the same pattern.
    intensity = _SEASON[month] * _WEEKDAY[weekday] * (1.0 + growth) ** years
    arrival = np.cumsum(intensity)
    arrival /= arrival[-1]
    region = rng.choice(len(REGIONS), size=n_customers, p=_REGION_SHARE)
    segment = rng.choice(len(SEGMENTS), size=n_customers, p=_SEGMENT_SHARE)
    # A third of the customers were there before the window; the others arrive along it.
    first = np.where(rng.random(n_customers) < 1 / 3, 0,
                     np.searchsorted(arrival, rng.random(n_customers)).clip(0, len(days) - 1))
    weight = rng.gamma(_RATE_SHAPE, 1.0, n_customers) * _SEGMENT_RATE[segment]
    # A customer's share of the orders grows with the time it has been a customer.
    weight *= (len(days) - first) / len(days)
    value = _SEGMENT_ORDER_VALUE[segment] * rng.gamma(4.0, 1 / 4.0, n_customers)
    pref = rng.dirichlet(np.full(len(CATEGORIES), 1.5), size=n_customers)
    return {"days": days, "intensity": intensity, "region": region, "segment": segment, "first": first,
            "weight": np.cumsum(weight) / weight.sum(), "value": value, "pref": np.cumsum(pref, axis=1)}


def _big_chunk(rng: np.random.Generator, co: dict, rows: int, first_order: int, return_rate: float):
    """``rows`` order lines as a pyarrow table, order numbers from ``first_order``."""
    import pyarrow as pa

    lines_per_order = 1 + rng.poisson(0.9, size=rows)  # more orders than needed, cut below
    n_orders = int(np.searchsorted(np.cumsum(lines_per_order), rows)) + 1
    lines_per_order = lines_per_order[:n_orders]
    lines_per_order[-1] -= int(lines_per_order.sum()) - rows
    cust = np.searchsorted(co["weight"], rng.random(n_orders)).clip(0, len(co["first"]) - 1)
    # The order day follows the season, on or after the customer's first day.
    cum = np.cumsum(co["intensity"])
    lo = np.where(co["first"][cust] > 0, cum[co["first"][cust] - 1], 0.0)
    day_idx = np.searchsorted(cum, lo + rng.random(n_orders) * (cum[-1] - lo)).clip(0, len(cum) - 1)
    channel = _draw(rng, np.cumsum(_SEGMENT_CHANNEL[co["segment"][cust]], axis=1))
    rep = co["region"][cust] * _REPS_PER_REGION + rng.integers(0, _REPS_PER_REGION, n_orders)
    owner = np.repeat(np.arange(n_orders), lines_per_order)
    c = cust[owner]
    category = _draw(rng, co["pref"][c])
    names = [items for _, items in _CATALOG.values()]
    offsets = np.cumsum([0] + [len(n) for n in names])
    product = offsets[category] + (rng.random(rows) * (offsets[category + 1] - offsets[category])).astype(np.int64)
    lo_price = np.array([p[1] for items in names for p in items], dtype=float)
    hi_price = np.array([p[2] for items in names for p in items], dtype=float)
    price = _nice_price(lo_price[product] + (hi_price[product] - lo_price[product]) * rng.random(rows))
    price = np.round(price * (1.0 - _SEGMENT_DISCOUNT[co["segment"][c]] - _CHANNEL_DISCOUNT[channel[owner]]), 2)
    per_line = co["value"][c] / lines_per_order[owner]
    quantity = np.maximum(1, np.round(rng.gamma(1.5, 1.0, rows) * per_line / (price * 1.5))).astype(np.int64)
    returned = rng.random(rows) < return_rate
    quantity = np.where(returned, -np.minimum(quantity, 1 + rng.poisson(0.3, rows)), quantity)
    order_no = first_order + owner
    order_ids = pa.compute.binary_join_element_wise(
        np.where(returned, "CN", "SO").astype(object),
        pa.compute.utf8_lpad(pa.array(order_no).cast(pa.string()), 10, "0"), "")
    table = pa.table({
        "order_date": pa.array(co["days"][day_idx[owner]].astype("datetime64[D]")),
        "order_id": order_ids,
        "customer_id": co["customer_ids"].take(pa.array(c)),
        "product_id": pa.array([f"P{i + 1:02d}" for i in range(len(lo_price))]).take(pa.array(product)),
        "category": pa.array(list(CATEGORIES)).take(pa.array(category)),
        "region": pa.array(list(REGIONS)).take(pa.array(co["region"][c])),
        "channel": pa.array(list(CHANNELS)).take(pa.array(channel[owner])),
        "rep_id": co["rep_ids"].take(pa.array(rep[owner])),
        "quantity": pa.array(quantity.astype(float)),
        "unit_price": pa.array(price),
        "revenue": pa.array(np.round(quantity * price, 2)),
    })
    return table, first_order + n_orders


def write_transactions(
    path: str | Path,
    *,
    rows: int,
    format: str | None = None,
    seed: int = 0,
    chunk_rows: int = CHUNK_ROWS,
    n_customers: int | None = None,
    start: object = DEFAULT_START,
    end: object = DEFAULT_END,
    growth: float = 0.08,
    return_rate: float = 0.02,
) -> Path:
    """Write a synthetic transactions file of any size, one chunk at a time.

    Memory stays at one chunk (``chunk_rows`` lines) whatever ``rows`` is, so
    files far larger than memory can be made for benchmarks and tests of the
    DuckDB engine (:mod:`salesplan.engine`). The company is the demo's, scaled:
    customers in five regions and three segments with gamma-distributed
    purchase weights and order values, arriving along the window; orders
    follow the monthly seasonality (December peak, summer dip), the weekday
    pattern and ``growth``; orders have one or more lines; ``return_rate`` of
    the lines are returns (negative quantity and revenue, ``CN`` order ids).

    Parameters
    ----------
    path : str or Path
        File to write (its folder is created).
    rows : int
        Order lines in the file.
    format : {"parquet", "csv"}, optional
        Default: from the file name (``.csv`` or else Parquet).
    seed : int
        The same seed, ``rows`` and ``chunk_rows`` give the same file.
    chunk_rows : int
        Lines made and written at a time (a Parquet row group each).
    n_customers : int, optional
        Default: one customer per 50 lines (at least 1,000).
    start, end : date-like
        The order dates' window.
    growth, return_rate : float
        Yearly growth of orders, and the share of lines that are returns.

    Returns
    -------
    Path
        The file written. Columns as the demo's ``transactions.csv``:
        ``order_date``, ``order_id``, ``customer_id``, ``product_id``,
        ``category``, ``region``, ``channel``, ``rep_id``, ``quantity``,
        ``unit_price``, ``revenue``.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> with tempfile.TemporaryDirectory() as d:
    ...     f = write_transactions(Path(d) / "tx.csv", rows=5_000, chunk_rows=2_000)
    ...     len(pd.read_csv(f))
    5000
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows = check_positive_int(rows, name="rows")
    chunk_rows = check_positive_int(chunk_rows, name="chunk_rows")
    seed = check_positive_int(seed, name="seed", allow_zero=True)
    path = Path(path)
    fmt = format or ("csv" if path.name.lower().endswith((".csv", ".csv.gz")) else "parquet")
    if fmt not in _FILE_FORMATS:
        raise SalesplanError(f"format must be one of {list(_FILE_FORMATS)}, got {format!r}.")
    n_customers = check_positive_int(n_customers if n_customers is not None else max(1_000, rows // 50),
                                     name="n_customers")
    t0, t1 = _day(start), _day(end)
    if t1 <= t0:
        raise SalesplanError(f"end ({end}) must be after start ({start}).")
    co = _big_company(_rng(seed, 100), n_customers, t0, t1, float(growth))
    width = max(5, len(str(n_customers)))
    co["customer_ids"] = pa.compute.binary_join_element_wise(
        "C", pa.compute.utf8_lpad(pa.array(np.arange(1, n_customers + 1)).cast(pa.string()), width, "0"), "")
    co["rep_ids"] = pa.array([f"R{i + 1:02d}" for i in range(len(REGIONS) * _REPS_PER_REGION)])
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    next_order = 1
    try:
        with open(path, "wb") as fh:
            for k, lo in enumerate(range(0, rows, chunk_rows)):
                n = min(chunk_rows, rows - lo)
                table, next_order = _big_chunk(_rng(seed, 101 + k), co, n, next_order, float(return_rate))
                if fmt == "parquet":
                    if writer is None:
                        writer = pq.ParquetWriter(fh, table.schema, compression="snappy")
                    writer.write_table(table, row_group_size=chunk_rows)
                else:
                    opts = pacsv.WriteOptions(include_header=k == 0, quoting_style="needed")
                    pacsv.write_csv(table, fh, write_options=opts)
            if writer is not None:
                writer.close()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


# --- command line ----------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """``python -m salesplan.datasets --out data/demo [--seed 42]``."""
    parser = argparse.ArgumentParser(
        prog="python -m salesplan.datasets",
        description="Regenerate the demo company's CSV files (byte-identical for a given seed).",
    )
    parser.add_argument("--out", default=str(DEMO_DIR), help="folder to write (default: data/demo)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--start", default=DEFAULT_START)
    parser.add_argument("--end", default=DEFAULT_END)
    parser.add_argument("--n-customers", type=int, default=3000)
    parser.add_argument("--rows", type=int, metavar="N",
                        help="instead, write one synthetic transactions file of N order lines to --out "
                             "(a file), in chunks, e.g. --rows 50_000_000 --out /tmp/tx.parquet")
    parser.add_argument("--format", choices=_FILE_FORMATS,
                        help="with --rows: parquet or csv (default: from the --out file name)")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="with --rows: lines per chunk")
    parser.add_argument("--docs", metavar="MARKDOWN",
                        help="instead, refresh the generated column tables in this file (docs/data-model.md)")
    args = parser.parse_args(argv)
    try:
        if args.docs:
            changed = update_data_model_docs(args.docs)
            print(f"{args.docs}: {'updated' if changed else 'already up to date'}")
            return 0
        if args.rows is not None:
            if Path(args.out).is_dir() or args.out == str(DEMO_DIR):
                raise SalesplanError("with --rows, --out names the file to write, e.g. --out /tmp/tx.parquet.")
            out = write_transactions(args.out, rows=args.rows, format=args.format, seed=args.seed,
                                     chunk_rows=args.chunk_rows, start=args.start, end=args.end)
            print(f"{out}  {args.rows:,} lines  {out.stat().st_size / 1e6:.1f} MB")
            return 0
        files = write_demo(args.out, seed=args.seed, start=args.start, end=args.end,
                           n_customers=args.n_customers)
    except SalesplanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for f in files:
        print(f"{f}  {f.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
