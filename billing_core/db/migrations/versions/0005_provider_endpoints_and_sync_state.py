"""provider endpoints and their sync state

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table('provider_endpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=False),
    sa.Column('token_env', sa.String(length=120), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('usage_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('invoices_since', sa.Date(), nullable=True),
    sa.Column('payments_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.String(length=16), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unreachable_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_provider_endpoints_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_provider_endpoints_provider_id_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_endpoints')),
    sa.UniqueConstraint('provider_id', 'account_id', name=op.f('uq_provider_endpoints_provider_id'))
    )
    with op.batch_alter_table('provider_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_endpoints_account_id'), ['account_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""

    with op.batch_alter_table('provider_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_endpoints_account_id'))

    op.drop_table('provider_endpoints')
