"""workspaces, channel links and member roles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""

    op.create_table('member_roles',
    sa.Column('workspace', sa.String(length=32), nullable=False),
    sa.Column('member', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('granted_by', sa.String(length=32), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('viewer','admin')", name=op.f('ck_member_roles_role')),
    sa.PrimaryKeyConstraint('workspace', 'member', name=op.f('pk_member_roles'))
    )
    op.create_table('channel_links',
    sa.Column('workspace', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('linked_by', sa.String(length=32), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_channel_links_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace', 'channel', name=op.f('pk_channel_links'))
    )
    op.create_table('workspace_accounts',
    sa.Column('workspace', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_workspace_accounts_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workspace', 'account_id', name=op.f('pk_workspace_accounts'))
    )



def downgrade() -> None:
    """Downgrade schema."""

    op.drop_table('workspace_accounts')
    op.drop_table('channel_links')
    op.drop_table('member_roles')

