"""merge: alerts (0004), provider sync (0005) and web-hook deliveries (0006), developed side by side

Revision ID: 0007
Revises: 0004, 0005, 0006
Create Date: 2026-11-23

"""
from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = '0007'
down_revision: str | Sequence[str] | None = ('0004', '0005', '0006')
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: the three branches touch separate tables; this only joins the history."""


def downgrade() -> None:
    """Nothing to change."""
