"""Alerts: pure rules (`rules`) and the service that evaluates them and keeps the outbox (`service`)."""
