"""The sales process, measured: funnel, durations, velocity, win probabilities, forecast, bottlenecks.

The pieces, in the order a sales manager uses them:

* the process as data: :class:`Process` (stages, won/lost, service levels,
  a CRM's stage names through :meth:`Process.with_mapping`);
* inputs checked once: :func:`prepare` (:class:`PreparedDeals`), :func:`deal_stages`;
* the funnel by cohort: :func:`funnel`, :func:`win_rates`, :func:`wilson_interval`;
* durations: :func:`kaplan_meier`, :func:`stage_durations`, :func:`cycle_length`,
  :func:`cycle_survival`, :func:`aging`;
* velocity: :func:`velocity`, :func:`velocity_trend`, :func:`lmdi`;
* learned win probabilities: :class:`WinModel`, :func:`reliability_table`;
* the pipeline forecast: :func:`learn_slip`, :func:`forecast_categories`,
  :func:`pipeline_forecast`, :func:`target_coverage`;
* bottlenecks: :func:`bottlenecks`, :func:`two_proportion_test`.

Every function takes the opportunities frame (or a :class:`PreparedDeals`)
first, the stage history second, and options by keyword.
"""

from salesplan.pipeline._deals import NO_OWNER, PreparedDeals, deal_stages, prepare
from salesplan.pipeline.bottlenecks import bottlenecks, two_proportion_test
from salesplan.pipeline.durations import aging, cycle_length, cycle_survival, kaplan_meier, km_median, stage_durations
from salesplan.pipeline.forecast import CATEGORIES, forecast_categories, learn_slip, pipeline_forecast, target_coverage
from salesplan.pipeline.funnel import funnel, wilson_interval, win_rates
from salesplan.pipeline.velocity import FACTORS, lmdi, velocity, velocity_trend
from salesplan.pipeline.winprob import FEATURES, WinModel, brier_score, reliability_table, snapshots
from salesplan.pipeline.process import DEFAULT_SERVICE_DAYS, Process, default_process

__all__ = [
    "Process", "DEFAULT_SERVICE_DAYS", "default_process",
    "PreparedDeals", "prepare", "deal_stages", "NO_OWNER",
    "funnel", "win_rates", "wilson_interval",
    "kaplan_meier", "km_median", "stage_durations", "cycle_length", "cycle_survival", "aging",
    "velocity", "velocity_trend", "lmdi", "FACTORS",
    "WinModel", "snapshots", "reliability_table", "brier_score", "FEATURES",
    "learn_slip", "forecast_categories", "pipeline_forecast", "target_coverage", "CATEGORIES",
    "bottlenecks", "two_proportion_test",
]
