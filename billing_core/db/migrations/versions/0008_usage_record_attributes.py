"""usage_records.attributes: per-record facts kept on the raw row but never rolled up

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Existing rows get an empty mapping (the server default), so the column can be NOT NULL at once."""
    op.add_column('usage_records', sa.Column('attributes', sa.JSON(), server_default='{}', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('usage_records') as batch:
        batch.drop_column('attributes')
