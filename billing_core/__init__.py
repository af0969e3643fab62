"""The billing domain: money, periods, ledger queries, projections, budgets, ingestion and exports.

Contract: knows nothing of Slack. Everything that leaves this package is a frozen dataclass from
`billing_core.results` (or a plain value); amounts are `Decimal`, never `float`. Time comes in as a
parameter (`now`, `today`); only entry points (CLI, jobs, handlers) read the wall clock.
"""
