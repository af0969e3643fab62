"""The Slack adapter: the only package that talks to Slack.

Contract: `handlers` ack, parse, authorize (through `bot.access`, the one place that decides who sees
what), ask the billing core, render with `views` and send; `views` are pure Block Kit builders; `jobs`
are the scheduler's entry points. Every Slack ID is spelled once, in `bot.ids`. Core errors
(`BillingError`) are turned into friendly ephemeral messages once, in `bot.replies`.
"""
