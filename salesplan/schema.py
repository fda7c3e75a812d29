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
    "STAGE_SYNONYMS",
    "STATUS_SYNONYMS",
    "get_schema",
    "normalize_header",
    "table_for_file_name",
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

#: Stage names of common CRMs -> :data:`STAGES`, compared with :func:`normalize_header`
#: (Salesforce, HubSpot, Odoo, Pipedrive, the common Kaggle CRM export, 简道云/纷享销客/销售易).
#: Pass ``stage_mapping=`` to a loader for names not listed here.
STAGE_SYNONYMS: dict[str, str] = {
    # terminal stages
    "Closed Won": "won", "closedwon": "won", "Won": "won", "Won Closed": "won", "Deal Won": "won",
    "Closed Lost": "lost", "closedlost": "lost", "Lost": "lost", "Lost Closed": "lost", "Deal Lost": "lost",
    "赢单": "won", "成交": "won", "已成交": "won", "签约成功": "won",
    "输单": "lost", "丢单": "lost", "失败": "lost", "已输单": "lost", "无效": "lost",
    # Salesforce's default sales process
    "Qualification": "first_contact", "Qualify": "first_contact",
    "Needs Analysis": "needs_analysis", "Value Proposition": "needs_analysis",
    "Id. Decision Makers": "needs_analysis", "Perception Analysis": "proposal",
    "Proposal/Price Quote": "proposal", "Negotiation/Review": "negotiation",
    # HubSpot's default deal pipeline (internal and display names)
    "appointmentscheduled": "first_contact", "qualifiedtobuy": "needs_analysis",
    "presentationscheduled": "proposal", "decisionmakerboughtin": "negotiation",
    "contractsent": "contract",
    # Odoo CRM
    "New": "prospecting", "Qualified": "needs_analysis", "Proposition": "proposal",
    # Pipedrive's default pipeline
    "Lead In": "prospecting", "Contact Made": "first_contact", "Demo Scheduled": "needs_analysis",
    "Needs Defined": "needs_analysis", "Proposal Made": "proposal", "Negotiations Started": "negotiation",
    # the common Kaggle CRM export (sales_pipeline.csv)
    "Engaging": "first_contact",
    # generic words
    "Lead": "prospecting", "Discovery": "needs_analysis", "Quote": "proposal", "Quoted": "proposal",
    "Negotiating": "negotiation", "Contracting": "contract", "Contract": "contract",
    # 简道云, 纷享销客, 销售易
    "线索": "prospecting", "潜在客户": "prospecting", "验证客户": "prospecting", "初步接洽": "first_contact",
    "初次接触": "first_contact", "需求确定": "needs_analysis", "需求分析": "needs_analysis",
    "方案报价": "proposal", "方案/报价": "proposal", "报价": "proposal", "商务谈判": "negotiation",
    "谈判审核": "negotiation", "谈判": "negotiation", "合同签订": "contract", "签约": "contract",
    "合同": "contract",
}

#: Status words of common CRMs -> :data:`STATUSES`.
STATUS_SYNONYMS: dict[str, str] = {
    "Closed Won": "won", "closedwon": "won", "Closed Lost": "lost", "closedlost": "lost",
    "In Progress": "open", "Active": "open", "Open": "open", "Pending": "open",
    "进行中": "open", "跟进中": "open", "赢单": "won", "成交": "won", "输单": "lost", "丢单": "lost",
    "赢": "won", "输": "lost",
}


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
    #: File (or sheet) names, without extension, that hold this table in a folder or workbook.
    file_names: tuple[str, ...] = ()

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
    "owner", "owner id", "owner name", "account owner", "sales agent", "agent",
    "销售员", "销售", "业务员", "销售代表", "负责人",
)
_DATE = ("date", "日期")

TRANSACTIONS = TableSchema(
    name="transactions",
    description="Order lines: one row per product on an order. Negative revenue is a return or credit note.",
    key=(),
    notes=("a line without a customer (a guest checkout) is kept: it counts in revenue, market and "
           "forecast analyses and is left out of customer analyses",),
    file_names=("transactions", "orders", "order_lines", "order lines", "orderlines", "sales", "sales_data",
                "invoices", "invoice_lines", "订单", "订单明细", "销售明细", "销售", "销售数据", "交易", "交易明细"),
    columns=(
        _c("order_date", "date", True, "Date of the order (or invoice).", (
            "order date", "orderdate", "invoice date", "invoicedate", "date", "sale date",
            "transaction date", "purchase date", "order created", "订单日期", "订单创建时间", "下单时间",
            "下单日期", "日期", "交易日期", "销售日期", "开票日期")),
        _c("customer_id", "string", True, "Who bought; a line without one (a guest checkout) is kept.",
           _CUSTOMER_ID + ("customer name", "company name", "account name", "客户姓名")),
        _c("revenue", "float", True,
           "Net value of the line in the data's currency; derived as quantity x unit_price when absent.", (
            "revenue", "sales", "amount", "sales amount", "total", "line total", "net sales", "value",
            "dollar value", "turnover", "销售额", "金额", "销售金额", "收入", "营业额", "总金额", "实收金额")),
        _c("order_id", "string", False, "Order or invoice number.", (
            "order", "order id", "order no", "order number", "invoice", "invoice no", "invoiceno",
            "invoice number", "订单号", "订单编号", "单号", "发票号")),
        _c("quantity", "float", False, "Units on the line (negative for returns).", (
            "quantity", "qty", "units", "volume", "number of units", "quantity ordered", "数量", "销量", "件数")),
        _c("unit_price", "float", False, "Price per unit.", (
            "unit price", "unitprice", "price", "price each", "单价", "价格")),
        _c("product_id", "string", False, "Product or SKU.", (
            "product", "product id", "product code", "sku", "item", "item id", "stockcode", "stock code", "article",
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
    file_names=("customers", "customer", "accounts", "account", "clients", "客户", "客户信息", "客户表"),
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

_OPPORTUNITY_ID = (
    "opportunity", "opportunity id", "opp id", "deal", "deal id", "record id", "hs object id",
    "商机", "商机编号", "商机id", "机会编号")

OPPORTUNITIES = TableSchema(
    name="opportunities",
    description="The pipeline: one row per opportunity, in its current stage.",
    key=("opportunity_id",),
    notes=(f"stage is one of: {', '.join(STAGES)} (CRM stage names such as Closed Won, "
           "closedwon, Negotiation/Review, 赢单 are recognised; pass stage_mapping= for others)",
           f"status is one of: {', '.join(STATUSES)}; without a status column it is derived from "
           "the won and lost stages (or Salesforce's IsClosed and IsWon)",
           "without an opportunity_id, the opportunity name is used when it is unique"),
    file_names=("opportunities", "opportunity", "opps", "deals", "deal", "pipeline", "sales_pipeline",
                "crm_deals", "商机", "商机列表", "机会", "销售机会"),
    columns=(
        _c("opportunity_id", "string", True, "Opportunity identifier.", _OPPORTUNITY_ID + ("id",)),
        _c("customer_id", "string", True, "Customer the deal is with.", tuple(
            a for a in _CUSTOMER_ID if a != "user id") + (
            "account name", "company", "associated company", "organization", "org name", "org id",
            "deal organization", "partner", "partner id", "customer name")),
        _c("rep_id", "string", True, "Owner of the deal.", _REP_ID + (
            "hubspot owner id", "deal owner", "opportunity owner", "user", "user id", "user name",
            "salesperson name")),
        _c("amount", "float", True, "Expected deal value.", (
            "amount", "deal value", "value", "close value", "expected revenue", "deal amount",
            "金额", "商机金额", "预计金额", "预计销售金额", "预计成交金额", "销售金额")),
        _c("created_date", "date", True, "When the opportunity was opened.", (
            "created", "created date", "create date", "createdate", "open date", "add time",
            "deal created", "deal deal created", "engage date", "created on", "creation date",
            "创建日期", "创建时间")),
        _c("stage", "string", True, "Current stage of the sales process.", (
            "stage", "stage name", "sales stage", "deal stage", "dealstage", "stage id", "阶段", "销售阶段",
            "商机阶段")),
        _c("status", "string", True, "open, won or lost.", ("status", "state", "deal status", "状态",
                                                             "商机状态")),
        _c("close_date", "date", False, "When it was won or lost (expected close date while open).", (
            "close date", "closed date", "closedate", "expected close", "expected close date",
            "date deadline", "deal expected close date", "expected closing", "expected closing date",
            "close time", "关闭日期", "成交日期", "预计成交日期", "结单日期", "预计结单日期")),
        _c("name", "string", False, "Name of the opportunity (deal title).", (
            "opportunity name", "deal name", "dealname", "title", "deal title", "商机名称", "机会名称")),
    ),
)

STAGE_HISTORY = TableSchema(
    name="stage_history",
    description="Optional: when each opportunity entered each stage.",
    key=("opportunity_id", "stage"),
    notes=(f"stage is one of: {', '.join(STAGES)} (as for opportunities; stage_mapping= for others)",
           "a history that logs every change (as Salesforce's OpportunityHistory does) repeats a stage: "
           "the first time each opportunity entered each stage is kept"),
    file_names=("stage_history", "opportunity_history", "opportunityhistory", "deal_history",
                "stage_changes", "pipeline_history", "阶段", "阶段历史", "阶段记录", "商机阶段历史"),
    columns=(
        _c("opportunity_id", "string", True, "Opportunity identifier.", _OPPORTUNITY_ID),
        _c("stage", "string", True, "Stage entered.", ("stage", "stage name", "to stage", "new stage",
                                                        "deal stage", "阶段", "销售阶段")),
        _c("entered_at", "date", True, "When it entered the stage.", (
            "entered", "entered at", "date", "timestamp", "created date", "created", "changed at",
            "change date", "进入日期", "日期", "变更日期", "创建日期")),
    ),
)

REPS = TableSchema(
    name="reps",
    description="The sales organisation: one row per rep.",
    key=("rep_id",),
    file_names=("reps", "sales_reps", "salesreps", "employees", "employee", "sales_team", "sales_teams",
                "staff", "users", "销售员", "员工", "销售团队", "人员"),
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
    file_names=("targets", "target", "quotas", "quota", "goals", "目标", "指标", "销售目标"),
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
    file_names=("feedback", "tickets", "support_tickets", "cases", "surveys", "反馈", "工单", "客户反馈"),
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
    file_names=("market", "market_size", "markets", "competitors", "competitor_sales", "市场", "市场规模"),
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


def table_for_file_name(name: str) -> str | None:
    """The table a file (or sheet) of this name holds, from :attr:`TableSchema.file_names`.

    The extension is ignored, and so are case, spaces, underscores and a
    trailing date or copy number (``Orders_2024.csv``, ``deals (1).xlsx``).

    >>> table_for_file_name("Order_Lines.csv")
    'transactions'
    >>> table_for_file_name("OpportunityHistory.csv")
    'stage_history'
    >>> table_for_file_name("商机.xlsx")
    'opportunities'
    >>> table_for_file_name("notes.txt") is None
    True
    """
    stem = str(name)
    for suffix in (".gz",):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    if "." in stem:
        stem = stem[: stem.rindex(".")] or stem
    folded = normalize_header(stem)
    candidates = [folded, re.sub(r"[0-9]+$", "", folded)]
    for text in candidates:
        if not text:
            continue
        for table in TABLES.values():
            if text in _FILE_NAMES[table.name]:
                return table.name
    return None


_FILE_NAMES: dict[str, set[str]] = {
    t.name: {normalize_header(n) for n in (t.name, *t.file_names)} for t in TABLES.values()
}
