"""Charts: matplotlib figures from plain data to PNG bytes.

Contract: no Slack, no database, no network. Inputs are the billing core's result dataclasses (or plain
sequences); outputs are PNG bytes sized for Slack's preview (800×400 at 100 dpi) and one-sentence alt
texts. Decimal becomes float only here, for plotting. Figures are built with `Figure` directly, never
pyplot's global state, so rendering is safe from the bot's worker threads.
"""

from charts.render import (
    alt_text_breakdown,
    alt_text_cost_trend,
    alt_text_forecast,
    alt_text_usage,
    breakdown_png,
    cost_trend_png,
    forecast_png,
    usage_stacked_png,
    warm_up,
)

__all__ = [
    "alt_text_breakdown",
    "alt_text_cost_trend",
    "alt_text_forecast",
    "alt_text_usage",
    "breakdown_png",
    "cost_trend_png",
    "forecast_png",
    "usage_stacked_png",
    "warm_up",
]
