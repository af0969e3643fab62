"""FOCUS usage ids in time order: `{account}:{digest}` becomes `{account}:{UTC hour of the charge start}:{digest}`

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

The importer now makes ids with the hour before the digest (`billing_core.sources.focus.id_hour`): a batch's ids
then land together at the end of the unique index instead of at random places all over it. Stored FOCUS rows
get the same ids the importer makes for them now, so re-importing a file already imported still changes nothing.
"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DIGEST = 32  # hex digits of the identity digest
_HOUR = 10  # YYYYMMDDHH


def upgrade() -> None:
    """`1:<digest>[:n]` → `1:2026010113:<digest>[:n]`, only ids of that shape (every id the importer made)."""
    postgres = op.get_bind().dialect.name == "postgresql"
    colon = "strpos(external_id, ':')" if postgres else "instr(external_id, ':')"
    hour = ("to_char(period_start AT TIME ZONE 'UTC', 'YYYYMMDDHH24')" if postgres
            else "strftime('%Y%m%d%H', period_start)")
    op.execute(
        f"UPDATE usage_records SET external_id = substr(external_id, 1, {colon}) || {hour} || ':' "
        f"|| substr(external_id, {colon} + 1) "
        f"WHERE source = 'focus' AND {colon} > 1 AND substr(external_id, {colon} + {_DIGEST} + 1, 1) IN ('', ':') "
        f"AND substr(external_id, {colon} + {_HOUR} + 1, 1) <> ':'")


def downgrade() -> None:
    """`1:2026010113:<digest>[:n]` → `1:<digest>[:n]`."""
    colon = "strpos(external_id, ':')" if op.get_bind().dialect.name == "postgresql" else "instr(external_id, ':')"
    op.execute(
        f"UPDATE usage_records SET external_id = substr(external_id, 1, {colon}) "
        f"|| substr(external_id, {colon} + {_HOUR} + 2) "
        f"WHERE source = 'focus' AND {colon} > 1 AND substr(external_id, {colon} + {_HOUR} + 1, 1) = ':'")
