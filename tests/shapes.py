"""Seeded data shapes a real company's export comes in, with facts computed by hand.

Each shape writes a few small files (at most ~2,000 order lines) into a folder
and knows, from the records it generated, figures a test can check after
loading: total revenue, number of customers, guest lines, a share... The facts
are computed here in plain Python (``math.fsum`` over the generated records),
not with the loaders or pandas, so that a test comparing them with what
``salesplan.io.load_data`` returns can fail.

Use them through the ``shape_paths`` fixture (``{name: data_path}``), or::

    from tests.shapes import SHAPES
    path = SHAPES["b2c_guests"].write(tmp_path)
    facts = SHAPES["b2c_guests"].facts

Shapes
------
required_only
    The three required columns only (CSV); history ends mid-2019.
region_category
    Region, category and product, no channel, rep or customers table (CSV);
    history ends in December 2018.
chinese_csv, chinese_xlsx
    Chinese headers, ``Y/m/d`` dates, thousands separators; GBK-encoded CSV,
    and an Excel workbook with a title row above the header.
b2c_guests
    B2C shop (Parquet): 20% guest lines without a customer, returns as
    negative quantities, no revenue column (quantity x unit price).
short_history
    14 months of history only, ending in December.
folder_with_reps
    A folder with transactions (with a rep column) and a reps table, but no
    opportunities, targets or feedback.
crm_kaggle
    A folder in the vocabulary of the common Kaggle CRM export:
    ``sales_pipeline.csv`` (``opportunity_id, sales_agent, product, account,
    deal_stage, engage_date, close_date, close_value``; stages Prospecting,
    Engaging, Won, Lost; open deals without a value or close date, prospects
    without an engage date), ``sales_teams.csv``, ``accounts.csv`` and the
    order lines ``orders.csv``. No stage mapping is needed.
crm_chinese
    A folder exported from a Chinese CRM (简道云/纷享销客/销售易 headers):
    ``销售明细.csv`` and ``商机.xlsx`` (商机名称, 客户名称, 负责人, 销售阶段,
    商机金额, 创建日期, 预计成交日期; stages 初步接洽 ... 赢单/输单, no status).

Facts keys
----------
Every shape: ``tables`` (set of table names load_data finds), ``lines``
(transaction lines loaded), ``total_revenue``, ``n_customers`` (distinct
customer ids), ``guest_lines``, ``guest_revenue``, ``returns`` (lines with a
negative quantity or revenue), ``date_from``, ``date_to`` (``datetime.date``),
``revenue_by_month`` (``"YYYY-MM"`` -> revenue). Some add: ``revenue_by_region``,
``revenue_by_category`` (region_category, chinese_*), ``guest_share_of_lines``
(b2c_guests), ``n_reps``, ``revenue_by_rep`` (folder_with_reps), and for the CRM
shapes ``opportunities``, ``won``, ``lost``, ``open``, ``won_amount``,
``open_without_amount``, ``stage_counts`` (our stage -> count); crm_kaggle also
``without_created_date`` (prospects without an engage date).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Shape", "SHAPES"]

# Month weights: a quiet start of the year, a peak before Christmas.
SEASON = (0.75, 0.7, 0.9, 0.95, 1.0, 1.0, 0.9, 0.85, 1.05, 1.1, 1.3, 1.6)
REGIONS = ("North", "South", "East", "West")
CATEGORIES = {"Tools": (8.0, 60.0), "Garden": (5.0, 35.0), "Kitchen": (3.0, 25.0), "Lighting": (12.0, 90.0)}
REGIONS_CN = ("华东", "华南", "华北", "西南")
CATEGORIES_CN = {"办公用品": (5.0, 40.0), "电子产品": (50.0, 400.0), "家具": (80.0, 600.0)}


@dataclass
class Shape:
    """One data shape: ``write(folder)`` writes its files and returns the ``data_path``."""

    name: str
    description: str
    build: Callable[[], tuple[dict[str, Callable[[Path], None]], str, dict[str, Any]]]
    _built: tuple | None = field(default=None, repr=False)

    def _get(self) -> tuple:
        if self._built is None:
            self._built = self.build()
        return self._built

    @property
    def facts(self) -> dict[str, Any]:
        """Figures computed from the generated records (see the module docstring for the keys)."""
        return self._get()[2]

    def write(self, folder: str | Path) -> Path:
        """Write the files under ``folder/<name>/``; returns the path to give as ``data_path``."""
        writers, data_path, _ = self._get()
        root = Path(folder) / self.name
        root.mkdir(parents=True, exist_ok=True)
        for filename, writer in writers.items():
            writer(root / filename)
        return root / data_path if data_path else root


# --------------------------------------------------------------------------- records


def _months(start: dt.date, end: dt.date) -> list[tuple[int, int]]:
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _orders(rng: random.Random, *, start: dt.date, end: dt.date, n_lines: int, n_customers: int,
            guest_share: float = 0.0, return_share: float = 0.02, regions=REGIONS, categories=CATEGORIES,
            reps: tuple[str, ...] = (), id_format: str = "C{:04d}") -> list[dict[str, Any]]:
    """Order lines with seasonality, growth and heavy and light buyers; revenue rounded to cents."""
    months = _months(start, end)
    weights = [SEASON[m - 1] * (1.0 + 0.15 * i / 12) for i, (_, m) in enumerate(months)]
    customers = [id_format.format(i + 1) for i in range(n_customers)]
    # each customer buys at its own rate (heavy and light buyers) and lives in one region
    rate = [rng.gammavariate(1.2, 1.0) + 0.05 for _ in customers]
    home = {c: regions[i % len(regions)] for i, c in enumerate(customers)}
    owner = {c: reps[i % len(reps)] for i, c in enumerate(customers)} if reps else {}
    products = [(f"{cat[:3].upper()}-{k:02d}", cat, round(rng.uniform(*rng_range), 2))
                for cat, rng_range in categories.items() for k in range(1, 5)]
    lines = []
    # guests among the lines after each customer's first, so every customer keeps a line
    guests = set(rng.sample(range(n_customers, n_lines), round(n_lines * guest_share)))
    for i in range(n_lines):
        y, m = rng.choices(months, weights)[0]
        first = dt.date(y, m, 1)
        last = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1))
        lo, hi = max(first, start), min(last, end)
        day = lo + dt.timedelta(days=rng.randrange((hi - lo).days + 1))
        # every customer buys at least once; then by rate
        cust = customers[i] if i < n_customers else rng.choices(customers, rate)[0]
        guest = i in guests
        product, category, price = rng.choice(products)
        qty = rng.choice((1, 1, 1, 2, 2, 3, 5))
        if rng.random() < return_share:
            qty = -qty
        lines.append({
            "order_id": f"SO{10000 + i}", "order_date": day, "customer_id": None if guest else cust,
            "product_id": product, "category": category, "region": home[cust], "quantity": qty,
            "unit_price": price, "revenue": round(qty * price, 2), "rep_id": owner.get(cust),
        })
    lines.sort(key=lambda r: (r["order_date"], r["order_id"]))
    return lines


def _facts(lines: list[dict[str, Any]], tables: set[str], *, revenue_of=None) -> dict[str, Any]:
    revenue_of = revenue_of or (lambda r: r["revenue"])
    by_month: dict[str, list[float]] = defaultdict(list)
    for r in lines:
        by_month[r["order_date"].strftime("%Y-%m")].append(revenue_of(r))
    guests = [r for r in lines if r["customer_id"] is None]
    return {
        "tables": set(tables),
        "lines": len(lines),
        "total_revenue": math.fsum(revenue_of(r) for r in lines),
        "n_customers": len({r["customer_id"] for r in lines if r["customer_id"] is not None}),
        "guest_lines": len(guests),
        "guest_revenue": math.fsum(revenue_of(r) for r in guests),
        "returns": sum(1 for r in lines if r["quantity"] < 0 or revenue_of(r) < 0),
        "date_from": min(r["order_date"] for r in lines),
        "date_to": max(r["order_date"] for r in lines),
        "revenue_by_month": {k: math.fsum(v) for k, v in sorted(by_month.items())},
    }


def _sum_by(lines, key, revenue_of=None) -> dict[str, float]:
    revenue_of = revenue_of or (lambda r: r["revenue"])
    out: dict[str, list[float]] = defaultdict(list)
    for r in lines:
        out[r[key]].append(revenue_of(r))
    return {k: math.fsum(v) for k, v in sorted(out.items())}


# --------------------------------------------------------------------------- writers


def _csv_writer(header: list[str], rows: list[list[Any]], *, encoding: str = "utf-8"):
    def write(path: Path) -> None:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        path.write_bytes(buf.getvalue().encode(encoding))
    return write


def _xlsx_writer(sheets: dict[str, tuple[list[str], list[list[Any]]]], *, title: str | None = None):
    def write(path: Path) -> None:
        from openpyxl import Workbook

        book = Workbook()
        book.remove(book.active)
        for sheet, (header, rows) in sheets.items():
            ws = book.create_sheet(sheet)
            if title:
                ws.append([title])
            ws.append(header)
            for row in rows:
                ws.append(row)
        book.save(path)
    return write


def _parquet_writer(columns: dict[str, list[Any]]):
    def write(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), path)
    return write


def _ymd(d: dt.date) -> str:
    return f"{d.year}/{d.month}/{d.day}"


# --------------------------------------------------------------------------- shapes


def _required_only():
    rng = random.Random(101)
    lines = _orders(rng, start=dt.date(2016, 1, 1), end=dt.date(2019, 6, 30), n_lines=1500, n_customers=60)
    rows = [[r["order_date"].isoformat(), r["customer_id"], f"{r['revenue']:.2f}"] for r in lines]
    return ({"sales.csv": _csv_writer(["Order Date", "Customer ID", "Sales"], rows)}, "sales.csv",
            _facts(lines, {"transactions"}))


def _region_category():
    rng = random.Random(202)
    lines = _orders(rng, start=dt.date(2015, 1, 1), end=dt.date(2018, 12, 31), n_lines=1800, n_customers=80)
    header = ["Order ID", "Order Date", "Customer ID", "Region", "Category", "Product ID", "Sales"]
    rows = [[r["order_id"], r["order_date"].strftime("%m/%d/%Y"), r["customer_id"], r["region"], r["category"],
             r["product_id"], f"{r['revenue']:.2f}"] for r in lines]
    facts = _facts(lines, {"transactions"})
    facts["revenue_by_region"] = _sum_by(lines, "region")
    facts["revenue_by_category"] = _sum_by(lines, "category")
    return {"superstore_orders.csv": _csv_writer(header, rows)}, "superstore_orders.csv", facts


def _chinese_lines():
    rng = random.Random(303)
    return _orders(rng, start=dt.date(2017, 4, 1), end=dt.date(2020, 9, 30), n_lines=1400, n_customers=50,
                   regions=REGIONS_CN, categories=CATEGORIES_CN, id_format="KH{:03d}")


_CN_HEADER = ["订单编号", "订单日期", "客户编号", "地区", "品类", "数量", "单价", "销售额"]


def _chinese_rows(lines):
    return [[r["order_id"], _ymd(r["order_date"]), r["customer_id"], r["region"], r["category"], r["quantity"],
             f"{r['unit_price']:,.2f}", f"{r['revenue']:,.2f}"] for r in lines]


def _chinese_facts(lines):
    facts = _facts(lines, {"transactions"})
    facts["revenue_by_region"] = _sum_by(lines, "region")
    facts["revenue_by_category"] = _sum_by(lines, "category")
    return facts


def _chinese_csv():
    lines = _chinese_lines()
    return ({"订单.csv": _csv_writer(_CN_HEADER, _chinese_rows(lines), encoding="gbk")}, "订单.csv",
            _chinese_facts(lines))


def _chinese_xlsx():
    lines = _chinese_lines()
    return ({"销售明细.xlsx": _xlsx_writer({"销售明细": (_CN_HEADER, _chinese_rows(lines))}, title="2017-2020年销售明细表")},
            "销售明细.xlsx", _chinese_facts(lines))


def _b2c_guests():
    rng = random.Random(404)
    lines = _orders(rng, start=dt.date(2019, 4, 1), end=dt.date(2021, 3, 31), n_lines=2000, n_customers=120,
                    guest_share=0.2, return_share=0.06)

    def revenue_of(r):
        return r["quantity"] * r["unit_price"]  # the loader derives it the same way, unrounded

    columns = {
        "Order Date": [r["order_date"] for r in lines],
        "Customer ID": [r["customer_id"] for r in lines],
        "StockCode": [r["product_id"] for r in lines],
        "Quantity": [r["quantity"] for r in lines],
        "UnitPrice": [r["unit_price"] for r in lines],
        "Invoice": [r["order_id"] for r in lines],
    }
    facts = _facts(lines, {"transactions"}, revenue_of=revenue_of)
    facts["guest_share_of_lines"] = facts["guest_lines"] / facts["lines"]
    return {"online_shop.parquet": _parquet_writer(columns)}, "online_shop.parquet", facts


def _short_history():
    rng = random.Random(505)
    lines = _orders(rng, start=dt.date(2023, 11, 1), end=dt.date(2024, 12, 31), n_lines=900, n_customers=45)
    rows = [[r["order_date"].isoformat(), r["customer_id"], r["product_id"], r["quantity"], f"{r['revenue']:.2f}"]
            for r in lines]
    return ({"transactions.csv": _csv_writer(["order_date", "customer_id", "product_id", "quantity", "revenue"],
                                             rows)}, "transactions.csv", _facts(lines, {"transactions"}))


def _folder_with_reps():
    rng = random.Random(606)
    reps = ("R01", "R02", "R03", "R04", "R05", "R06")
    lines = _orders(rng, start=dt.date(2019, 7, 1), end=dt.date(2022, 6, 30), n_lines=1600, n_customers=70,
                    reps=reps)
    rows = [[r["order_id"], r["order_date"].isoformat(), r["customer_id"], r["region"], r["category"],
             r["rep_id"], f"{r['revenue']:.2f}"] for r in lines]
    rep_rows = [[rid, f"Rep {rid[-1]}", "Team A" if i < 3 else "Team B", REGIONS[i % 4],
                 (dt.date(2018, 1, 1) + dt.timedelta(days=90 * i)).isoformat()] for i, rid in enumerate(reps)]
    facts = _facts(lines, {"transactions", "reps"})
    facts["n_reps"] = len(reps)
    facts["revenue_by_rep"] = _sum_by(lines, "rep_id")
    return ({"transactions.csv": _csv_writer(["order_id", "order_date", "customer_id", "region", "category",
                                              "rep_id", "revenue"], rows),
             "reps.csv": _csv_writer(["rep_id", "name", "team", "region", "start_date"], rep_rows)},
            "", facts)


def _deals(rng, *, n, customers, agents, start, end, stages):
    """Opportunities: (id, customer, agent, stage, created, close, amount) with open ones unvalued."""
    out = []
    span = (end - start).days
    for i in range(n):
        stage = rng.choices(list(stages), [w for w, _ in stages.values()])[0]
        created = start + dt.timedelta(days=rng.randrange(span))
        amount = round(rng.uniform(500, 12000), 0)
        closed = stages[stage][1] in ("won", "lost")
        close = min(created + dt.timedelta(days=rng.randrange(10, 120)), end) if closed else None
        out.append({"id": f"{rng.getrandbits(32):08X}{i:03d}", "customer": rng.choice(customers),
                    "agent": rng.choice(agents), "stage": stage, "ours": stages[stage][1], "created": created,
                    "close": close, "amount": amount if closed else None})
    return out


def _deal_facts(deals) -> dict[str, Any]:
    ours = Counter(d["ours"] for d in deals)
    return {
        "opportunities": len(deals), "won": ours["won"], "lost": ours["lost"],
        "open": len(deals) - ours["won"] - ours["lost"],
        "won_amount": math.fsum(d["amount"] for d in deals if d["ours"] == "won"),
        "open_without_amount": sum(1 for d in deals if d["amount"] is None),
        "stage_counts": dict(ours),
    }


def _crm_kaggle():
    rng = random.Random(707)
    agents = ("Anna Snelling", "Cecily Lampkin", "Versie Hillebrand", "Lajuana Vencill", "Moses Frase")
    lines = _orders(rng, start=dt.date(2016, 10, 1), end=dt.date(2017, 12, 31), n_lines=1200, n_customers=50,
                    reps=agents, id_format="Account {:02d}")
    stages = {"Won": (0.45, "won"), "Lost": (0.28, "lost"), "Engaging": (0.2, "first_contact"),
              "Prospecting": (0.07, "prospecting")}
    customers = sorted({r["customer_id"] for r in lines})
    deals = _deals(rng, n=400, customers=customers, agents=agents, start=dt.date(2016, 10, 20),
                   end=dt.date(2017, 12, 31), stages=stages)
    pipeline_rows = [[d["id"], d["agent"], "GTX Pro", d["customer"], d["stage"],
                      "" if d["stage"] == "Prospecting" else d["created"].isoformat(),
                      d["close"].isoformat() if d["close"] else "",
                      "" if d["amount"] is None else f"{d['amount']:.0f}"] for d in deals]
    facts = _facts(lines, {"transactions", "opportunities", "reps", "customers"})
    facts.update(_deal_facts(deals))
    facts["without_created_date"] = sum(1 for d in deals if d["stage"] == "Prospecting")
    order_rows = [[r["order_id"], r["order_date"].isoformat(), r["customer_id"], r["rep_id"], r["product_id"],
                   f"{r['revenue']:.2f}"] for r in lines]
    return ({
        "sales_pipeline.csv": _csv_writer(["opportunity_id", "sales_agent", "product", "account", "deal_stage",
                                           "engage_date", "close_date", "close_value"], pipeline_rows),
        "sales_teams.csv": _csv_writer(["sales_agent", "manager", "regional_office"],
                                       [[a, "Dustin Brinkmann" if i < 3 else "Melvin Marxen",
                                         "Central" if i < 3 else "East"] for i, a in enumerate(agents)]),
        "accounts.csv": _csv_writer(["account", "sector", "year_established", "office_location"],
                                    [[c, ("retail", "software", "medical")[i % 3], 1980 + i, "United States"]
                                     for i, c in enumerate(customers)]),
        "orders.csv": _csv_writer(["order_id", "order_date", "account", "sales_agent", "product", "sales"],
                                  order_rows),
    }, "", facts)


def _crm_chinese():
    rng = random.Random(808)
    owners = ("张伟", "王芳", "李娜", "刘洋")
    lines = _orders(rng, start=dt.date(2021, 1, 1), end=dt.date(2023, 8, 31), n_lines=1300, n_customers=45,
                    regions=REGIONS_CN, categories=CATEGORIES_CN, reps=owners, id_format="客户{:03d}")
    stages = {"赢单": (0.35, "won"), "输单": (0.25, "lost"), "初步接洽": (0.12, "first_contact"),
              "需求确定": (0.1, "needs_analysis"), "方案报价": (0.1, "proposal"), "谈判审核": (0.08, "negotiation")}
    customers = sorted({r["customer_id"] for r in lines})
    deals = _deals(rng, n=240, customers=customers, agents=owners, start=dt.date(2021, 3, 1),
                   end=dt.date(2023, 8, 31), stages=stages)
    for d in deals:  # Chinese CRMs keep the expected value of open deals
        if d["amount"] is None:
            d["amount"] = round(rng.uniform(2000, 50000), 0)
    header = ["商机名称", "客户名称", "负责人", "销售阶段", "商机金额", "创建日期", "预计成交日期"]
    rows = [[f"{d['customer']}-项目{i + 1}", d["customer"], d["agent"], d["stage"], f"{d['amount']:,.0f}",
             _ymd(d["created"]), _ymd(d["close"] or d["created"] + dt.timedelta(days=60))]
            for i, d in enumerate(deals)]
    facts = _facts(lines, {"transactions", "opportunities"})
    facts.update(_deal_facts(deals))
    order_rows = [[r["order_id"], _ymd(r["order_date"]), r["customer_id"], r["region"], r["rep_id"],
                   f"{r['revenue']:,.2f}"] for r in lines]
    return ({
        "销售明细.csv": _csv_writer(["订单编号", "订单日期", "客户名称", "地区", "负责人", "销售额"], order_rows,
                                encoding="gbk"),
        "商机.xlsx": _xlsx_writer({"商机": (header, rows)}),
    }, "", facts)


SHAPES: dict[str, Shape] = {s.name: s for s in (
    Shape("required_only", "the three required columns only (CSV), history ending mid-2019", _required_only),
    Shape("region_category", "region and category, no channel, rep or customers table (CSV), ending in December",
          _region_category),
    Shape("chinese_csv", "Chinese headers, GBK, Y/m/d dates, thousands separators (CSV)", _chinese_csv),
    Shape("chinese_xlsx", "Chinese headers, Y/m/d dates, thousands separators, a title row (Excel)", _chinese_xlsx),
    Shape("b2c_guests", "B2C: 20% guest lines, returns as negative quantities, revenue = quantity x price "
          "(Parquet)", _b2c_guests),
    Shape("short_history", "14 months of history only, ending in December", _short_history),
    Shape("folder_with_reps", "a folder with transactions and reps, no opportunities, targets or feedback",
          _folder_with_reps),
    Shape("crm_kaggle", "a folder with the Kaggle CRM export's pipeline, teams and accounts, plus orders",
          _crm_kaggle),
    Shape("crm_chinese", "a folder with a Chinese CRM's order lines (GBK) and opportunities (Excel)", _crm_chinese),
)}
