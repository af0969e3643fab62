"""usage_records: ids compared byte by byte (COLLATE "C"), and no (account, start) index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

Every usage row inserted maintains each index of `usage_records`. The unique (source, external_id) index compared
ids in the database's locale (strcoll, a quarter slower than comparing bytes, and an order Arrow's sort of a
batch's ids does not follow); ids are opaque keys, so PostgreSQL now compares them as bytes, as SQLite always did.
The (account_id, period_start) index served no query of the product (usage questions read the rollups) and cost a
tenth of a bulk COPY: whether an account has FOCUS rows is now asked of the unique index (their ids begin with the
account, `focus.id_prefix`; `imports._has_usage`).

On PostgreSQL the new collation rebuilds the unique index (the table itself is not rewritten) under an exclusive
lock: usage writes wait for it, about a second per million stored rows.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0011'
down_revision: str | Sequence[str] | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_usage_records_account_start', table_name='usage_records')
    if op.get_bind().dialect.name == "postgresql":  # SQLite compares text as bytes already
        op.alter_column('usage_records', 'source', type_=sa.String(64, collation="C"))
        op.alter_column('usage_records', 'external_id', type_=sa.String(200, collation="C"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column('usage_records', 'external_id', type_=sa.String(200, collation="default"))
        op.alter_column('usage_records', 'source', type_=sa.String(64, collation="default"))
    op.create_index('ix_usage_records_account_start', 'usage_records', ['account_id', 'period_start'], unique=False)
