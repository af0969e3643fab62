"""Block Kit builders: core results in, JSON-ready dicts out. Pure: no Slack calls, no database.

Every message has a plain-text `text` fallback; every user-supplied string is escaped for mrkdwn; money
and dates are written for the reader's locale and time zone (`Reader`) by `billing_core.fmt`.
"""
