"""The whole schema: every module that declares tables, imported so `Base.metadata` knows all of them.

Features keep their tables in modules of their own (alerts, provider sync, web-hooks); whatever needs the
complete picture — Alembic's environment, the test fixtures that empty every table — imports `Base` from here.
"""

from billing_core.db import alert_models, models, sync_models, webhook_models

Base = models.Base
MODULES = (models, alert_models, sync_models, webhook_models)

__all__ = ["MODULES", "Base"]
