"""Target setting: SMART targets, top-down allocation, phasing, bottom-up views and plans.

The pieces, in the order a planner uses them:

* inputs: :func:`metric_panel` (history per unit), :func:`forecast_distribution`
  (sample paths from :mod:`salesplan.forecast`, or the documented fallback
  :func:`bootstrap_sample_paths`), :func:`samples_from_intervals`;
* one joint distribution per plan: :class:`JointForecast` (every unit and
  every level above it simulated together and reconciled, so that each
  node's probability is a count over the same paths: :func:`node_probabilities`),
  and its check against history: :func:`calibration_backtest`,
  :func:`reliability_table`, :func:`calibration_summary`;
* targets as data and their check: :class:`Target`, :func:`targets_frame`,
  :func:`smart_check` (:class:`SmartCheck`), :func:`smart_table`, :func:`unit_verdicts`;
* top-down: :class:`Allocator` / :func:`allocate` (methods :data:`METHODS`,
  locks, largest-remainder rounding), :func:`compare_methods`,
  :func:`fairness_summary`, :func:`allocate_hierarchy`, phasing with
  :meth:`Allocator.phase`;
* bottom-up: :func:`stage_win_rates`, :func:`pipeline_value`, :func:`run_rate`,
  :func:`capacity_plan`, :func:`won_in_run_rate`, :func:`bottom_up`, :func:`target_gap`;
* scenarios and plans: :class:`Scenario`, :func:`make_plan`, :func:`plan_scenario`, :func:`save_plan`,
  :func:`load_plan`, :func:`list_plans`, :func:`diff_plans`,
  :func:`export_excel`, :func:`export_csv`; an edited workbook read back with
  :func:`load_plan_excel` (changed cells become locks), :func:`excel_assumptions`.
"""

from salesplan.targets._data import (
    ADDITIVE_METRICS,
    METRICS,
    bootstrap_sample_paths,
    check_samples,
    fingerprint,
    forecast_distribution,
    metric_panel,
    samples_from_intervals,
)
from salesplan.targets.allocation import (
    METHODS,
    Allocator,
    allocate,
    allocate_hierarchy,
    attainment_probability,
    check_hierarchy,
    compare_methods,
    equal_probability_quotas,
    fairness_summary,
    hierarchy_from_edges,
    largest_remainder,
    plan_period,
)
from salesplan.targets.bottom_up import (
    DEFAULT_RAMP,
    bottom_up,
    capacity_plan,
    full_productivity,
    pipeline_value,
    run_rate,
    stage_win_rates,
    target_gap,
    won_in_run_rate,
)
from salesplan.targets.excel import ExcelEdits, excel_assumptions, load_plan_excel, plan_checksum
from salesplan.targets.plans import (
    Plan,
    Scenario,
    diff_plans,
    export_csv,
    export_excel,
    list_plans,
    load_plan,
    make_plan,
    plan_scenario,
    save_plan,
)
from salesplan.targets.calibration import align_ends, calibration_backtest, calibration_summary, reliability_table
from salesplan.targets.joint import RECONCILE_METHODS, JointForecast, node_probabilities
from salesplan.targets.smart import (
    LETTERS,
    SmartCheck,
    Target,
    smart_check,
    smart_table,
    targets_frame,
    targets_from_frame,
    unit_verdicts,
)

__all__ = [
    "METRICS", "ADDITIVE_METRICS", "METHODS", "LETTERS", "DEFAULT_RAMP",
    "metric_panel", "forecast_distribution", "bootstrap_sample_paths", "samples_from_intervals",
    "check_samples", "fingerprint",
    "Target", "SmartCheck", "targets_frame", "targets_from_frame", "smart_check", "smart_table",
    "Allocator", "allocate", "compare_methods", "fairness_summary", "largest_remainder",
    "equal_probability_quotas", "attainment_probability", "plan_period",
    "check_hierarchy", "hierarchy_from_edges", "allocate_hierarchy",
    "stage_win_rates", "pipeline_value", "run_rate", "capacity_plan", "full_productivity",
    "bottom_up", "target_gap", "won_in_run_rate",
    "JointForecast", "RECONCILE_METHODS", "node_probabilities", "unit_verdicts",
    "calibration_backtest", "reliability_table", "calibration_summary", "align_ends",
    "Scenario", "Plan", "make_plan", "plan_scenario", "save_plan", "load_plan", "list_plans", "diff_plans",
    "export_excel", "export_csv", "load_plan_excel", "ExcelEdits", "excel_assumptions", "plan_checksum",
]
