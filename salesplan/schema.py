"""The data model: one place for every table's columns, dtypes and header aliases.

Each table a sales organisation has is a :class:`TableSchema`; its columns are
:class:`Column` objects that say the field name (snake_case), the kind of value
(``date``, ``string``, ``float``, ``int``), whether it is required, and the
header names a real export tends to use for it (English and Chinese). Loaders in
:mod:`salesplan.io` map headers with these aliases; validators check the kinds.

The human description of the same model lives in ``docs/data-model.md``; a test
keeps the two in step.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "Column",
    "TableSchema",
    "TABLES",
    "STAGES",
    "OPEN_STAGES",
    "STATUSES",
    "TARGET_LEVELS",
    "get_schema",
    "normalize_header",
]

#: The standard sales process, in order. ``won`` and ``lost`` are terminal.
STAGES: tuple[str, ...] = (
    "prospecting",
    "first_contact",
    "needs_analysis",
    "proposal",
    "negotiation",
    "contract",
    "won",
    "lost",
)
#: Stages an open opportunity can be in.
OPEN_STAGES: tuple[str, ...] = STAGES[:-2]
#: Opportunity statuses.
STATUSES: tuple[str, ...] = ("open", "won", "lost")
#: Levels a target can be set at.
TARGET_LEVELS: tuple[str, ...] = (
    "company",
    "region",
    "team",
    "rep",
    "product",
    "category",
    "channel",
    "segment",
)

KINDS = ("date", "string", "float", "int")


@dataclass(frozen=True)
class Column:
    """One field of a table.

    Parameters
    ----------
    name : str
        The snake_case field name used everywhere in salesplan.
    kind : {"date", "string", "float", "int"}
        What its values are. Dates are parsed to ``datetime64``; numbers
        accept thousands separators and currency symbols when loading.
    required : bool
        Whether a table without it is rejected.
    description : str
        One line for the documentation and the ``validate`` report.
    aliases : tuple of str
        Header names in real exports that mean this field.
    """

    name: str
    kind: str
    required: bool = False
    description: str = ""
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Column {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class TableSchema:
    """A table of the data model: its columns and its key."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def required(self) -> list[str]:
        """Names of the required columns."""
        return [c.name for c in self.columns if c.required]

    @property
    def optional(self) -> list[str]:
        """Names of the optional columns."""
        return [c.name for c in self.columns if not c.required]

    @property
    def names(self) -> list[str]:
        """All column names, required first as declared."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The :class:`Column` called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}; columns: {self.names}")

    def dtypes(self) -> dict[str, str]:
        """Column name -> pandas dtype that loaded frames carry."""
        return {c.name: _PANDAS_DTYPE[c.kind] for c in self.columns}


_PANDAS_DTYPE = {
    "date": "datetime64[ns]",
    "string": "string",
    "float": "float64",
    "int": "Int64",
}


def _c(name, kind, required=False, description="", aliases=()):
    return Column(name, kind, required, description, tuple(aliases))


# Aliases shared by several tables.
_CUSTOMER_ID = (
    "customer", "customer id", "customer no", "customer number", "customerid", "cust id",
    "client", "client id", "account", "account id", "buyer", "member id", "user id",
    "客户", "客户id", "客户编号", "客户号", "客户名称", "会员id", "买家",
)
_REGION = ("region", "area", "territory", "zone", "sales region", "地区", "区域", "大区", "销售区域")
_REP_ID = (
    "rep", "rep id", "sales rep", "salesperson", "sales person", "salesman", "seller",
    "owner", "account owner", "销售员", "销售", "业务员", "销售代表", "负责人",
)
_DATE = ("date", "日期")

TRANSACTIONS = TableSchema(
    name="transactions",
    description="Order lines: one row per product on an order. Negative revenue is a return or credit note.",
    key=(),
    columns=(
        _c("order_date", "date", True, "Date of the order (or invoice).", (
            "order date", "orderdate", "invoice date", "invoicedate", "date", "sale date",
            "transaction date", "purchase date", "订单日期", "下单日期", "日期", "交易日期", "销售日期", "开票日期")),
        _c("customer_id", "string", True, "Who bought.", _CUSTOMER_ID),
        _c("revenue", "float", True,
           "Net value of the line in the data's currency; derived as quantity x unit_price when absent.", (
            "revenue", "sales", "amount", "sales amount", "total", "line total", "net sales", "value",
            "dollar value", "turnover", "销售额", "金额", "销售金额", "收入", "营业额", "总金额", "实收金额")),
        _c("order_id", "string", False, "Order or invoice number.", (
            "order", "order id", "order no", "order number", "invoice", "invoice no", "invoiceno",
            "invoice number", "订单号", "订单编号", "单号", "发票号")),
        _c("quantity", "float", False, "Units on the line (negative for returns).", (
            "quantity", "qty", "units", "volume", "number of units", "数量", "销量", "件数")),
        _c("unit_price", "float", False, "Price per unit.", (
            "unit price", "unitprice", "price", "price each", "单价", "价格")),
        _c("product_id", "string", False, "Product or SKU.", (
            "product", "product id", "sku", "item", "item id", "stockcode", "stock code", "article",
            "产品", "产品id", "产品编号", "商品", "商品编号", "物料")),
        _c("category", "string", False, "Product category or family.", (
            "category", "product category", "product line", "family", "类别", "品类", "产品类别", "分类")),
        _c("region", "string", False, "Sales region of the line.", _REGION),
        _c("channel", "string", False, "Channel the sale went through.", (
            "channel", "sales channel", "渠道", "销售渠道")),
        _c("rep_id", "string", False, "Sales rep credited with the line.", _REP_ID),
    ),
)

CUSTOMERS = TableSchema(
    name="customers",
    description="One row per customer.",
    key=("customer_id",),
    columns=(
        _c("customer_id", "string", True, "Customer identifier.", _CUSTOMER_ID),
        _c("name", "string", False, "Customer name.", ("name", "customer name", "company", "名称", "公司名称")),
        _c("region", "string", False, "Home region.", _REGION),
        _c("segment", "string", False, "Segment (e.g. SMB, mid-market, enterprise).", (
            "segment", "customer segment", "tier", "细分", "客户类型", "客户分类")),
        _c("industry", "string", False, "Industry.", ("industry", "sector", "vertical", "行业")),
        _c("first_order_date", "date", False, "Date of the first order.", (
            "first order date", "first purchase", "signup date", "customer since", "首次下单日期", "首单日期")),
    ),
)

OPPORTUNITIES = TableSchema(
    name="opportunities",
    description="The pipeline: one row per opportunity, in its current stage.",
    key=("opportunity_id",),
    notes=(f"stage is one of: {', '.join(STAGES)}", f"status is one of: {', '.join(STATUSES)}"),
    columns=(
        _c("opportunity_id", "string", True, "Opportunity identifier.", (
            "opportunity", "opportunity id", "opp id", "deal", "deal id", "商机", "商机编号", "机会编号")),
        _c("customer_id", "string", True, "Customer the deal is with.", _CUSTOMER_ID),
        _c("rep_id", "string", True, "Owner of the deal.", _REP_ID),
        _c("amount", "float", True, "Expected deal value.", (
            "amount", "deal value", "value", "expected revenue", "金额", "商机金额", "预计金额")),
        _c("created_date", "date", True, "When the opportunity was opened.", (
            "created", "created date", "create date", "open date", "创建日期", "创建时间")),
        _c("stage", "string", True, "Current stage of the sales process.", ("stage", "sales stage", "阶段", "销售阶段")),
        _c("status", "string", True, "open, won or lost.", ("status", "state", "状态")),
        _c("close_date", "date", False, "When it was won or lost (expected close date while open).", (
            "close date", "closed date", "closedate", "expected close", "关闭日期", "成交日期")),
    ),
)

STAGE_HISTORY = TableSchema(
    name="stage_history",
    description="Optional: when each opportunity entered each stage.",
    key=("opportunity_id", "stage"),
    notes=(f"stage is one of: {', '.join(STAGES)}",),
    columns=(
        _c("opportunity_id", "string", True, "Opportunity identifier.", OPPORTUNITIES.column("opportunity_id").aliases),
        _c("stage", "string", True, "Stage entered.", ("stage", "阶段")),
        _c("entered_at", "date", True, "When it entered the stage.", (
            "entered", "entered at", "date", "timestamp", "进入日期", "日期")),
    ),
)

REPS = TableSchema(
    name="reps",
    description="The sales organisation: one row per rep.",
    key=("rep_id",),
    columns=(
        _c("rep_id", "string", True, "Rep identifier.", _REP_ID + ("rep id", "employee id", "工号")),
        _c("name", "string", False, "Rep name.", ("name", "rep name", "姓名")),
        _c("team", "string", False, "Team.", ("team", "sales team", "团队", "小组")),
        _c("region", "string", False, "Region the rep covers.", _REGION),
        _c("manager", "string", False, "Rep id or name of the manager.", ("manager", "supervisor", "经理", "主管")),
        _c("start_date", "date", False, "Hire date, for ramp-up.", (
            "start date", "hire date", "hired", "入职日期")),
    ),
)

TARGETS = TableSchema(
    name="targets",
    description="Targets (quotas): one value per period, level, key and metric.",
    key=("period", "level", "key", "metric"),
    notes=(f"level is one of: {', '.join(TARGET_LEVELS)}",),
    columns=(
        _c("period", "date", True, "Start of the period the target is for.", ("period", "month", "期间", "月份")),
        _c("level", "string", True, "company, region, team, rep, product, category, channel or segment.", (
            "level", "层级")),
        _c("key", "string", True, "Which unit of that level (region name, rep id...); 'all' for company.", (
            "key", "unit", "name", "对象")),
        _c("metric", "string", True, "What is measured (revenue, units, new_customers, win_rate...).", (
            "metric", "kpi", "指标")),
        _c("value", "float", True, "The target value.", ("value", "target", "quota", "目标", "目标值")),
    ),
)

FEEDBACK = TableSchema(
    name="feedback",
    description="After-sales feedback and support tickets.",
    key=(),
    columns=(
        _c("customer_id", "string", True, "Customer.", _CUSTOMER_ID),
        _c("date", "date", True, "When the feedback or ticket was received.", _DATE + (
            "created", "created at", "ticket date", "反馈日期")),
        _c("satisfaction", "float", False, "Satisfaction score (e.g. 1-5).", (
            "satisfaction", "csat", "score", "rating", "满意度", "评分")),
        _c("issue_type", "string", False, "Ticket or issue type.", (
            "issue type", "ticket type", "type", "category", "问题类型", "工单类型")),
        _c("ticket_id", "string", False, "Ticket identifier.", ("ticket", "ticket id", "工单号")),
        _c("resolved_at", "date", False, "When the ticket was resolved.", (
            "resolved", "resolved at", "closed at", "解决日期", "解决时间")),
    ),
)

MARKET = TableSchema(
    name="market",
    description="Optional: market size or competitor sales by period and region/category.",
    key=(),
    notes=("at least one of market_size or competitor_sales is needed",),
    columns=(
        _c("period", "date", True, "Start of the period.", ("period", "month", "year", "期间", "月份")),
        _c("region", "string", False, "Region.", _REGION),
        _c("category", "string", False, "Category.", ("category", "类别", "品类")),
        _c("market_size", "float", False, "Total market in the data's currency.", (
            "market size", "market", "tam", "市场规模", "市场容量")),
        _c("competitor_sales", "float", False, "Competitors' sales.", ("competitor sales", "竞品销售额", "竞争对手销售额")),
    ),
)

#: Every table of the data model, by name.
TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (TRANSACTIONS, CUSTOMERS, OPPORTUNITIES, STAGE_HISTORY, REPS, TARGETS, FEEDBACK, MARKET)
}


def get_schema(table: str) -> TableSchema:
    """The schema of ``table``, with a helpful error for unknown names."""
    from salesplan.errors import SalesplanError

    try:
        return TABLES[table]
    except KeyError:
        raise SalesplanError(
            f"Unknown table {table!r}. Known tables: {', '.join(TABLES)}."
        ) from None


_SEPARATORS = re.compile(r"[\s_\-./()\[\]:：（）]+")


def normalize_header(header: object) -> str:
    """Fold a header for matching: NFKC, lower case, no spaces or punctuation.

    >>> normalize_header("  Order Date ")
    'orderdate'
    >>> normalize_header("Customer_ID")
    'customerid'
    >>> normalize_header("订单 日期")
    '订单日期'
    """
    text = unicodedata.normalize("NFKC", str(header)).strip().lower()
    return _SEPARATORS.sub("", text)
