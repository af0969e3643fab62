"""usage_dimension_sets: each distinct set of usage dimensions stored once, referenced by usage_records

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

"""
import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Every stored set moves to the new table (the same digest of its sorted pairs as ingestion computes), its
    rows point at it, then the column goes."""
    op.create_table('usage_dimension_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=32), nullable=False),
    sa.Column('dimensions', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_dimension_sets')),
    sa.UniqueConstraint('digest', name=op.f('uq_usage_dimension_sets_digest'))
    )
    op.add_column('usage_records', sa.Column('dimension_set_id', sa.Integer(), server_default='0', nullable=False))
    connection = op.get_bind()
    # Each distinct stored text once (few), then every row in one pass through a text → id table.
    connection.execute(sa.text("CREATE TEMPORARY TABLE dimension_set_map (stored TEXT PRIMARY KEY, id INTEGER)"))
    texts = connection.execute(sa.text("SELECT DISTINCT CAST(dimensions AS TEXT) FROM usage_records")).scalars()
    ids: dict[str, int] = {}
    for stored in list(texts):
        pairs = sorted((str(k), str(v)) for k, v in json.loads(stored).items()) if stored else []
        if not pairs:
            continue
        digest = hashlib.blake2b(json.dumps(pairs, separators=(",", ":")).encode(), digest_size=16).hexdigest()
        if digest not in ids:
            ids[digest] = connection.execute(
                sa.text("INSERT INTO usage_dimension_sets (digest, dimensions) VALUES (:d, :j) RETURNING id"),
                {"d": digest, "j": json.dumps(dict(pairs))}).scalar_one()
        connection.execute(sa.text("INSERT INTO dimension_set_map (stored, id) VALUES (:t, :i)"),
                           {"t": stored, "i": ids[digest]})
    connection.execute(sa.text(
        "UPDATE usage_records SET dimension_set_id = COALESCE((SELECT m.id FROM dimension_set_map m "
        "WHERE m.stored = CAST(usage_records.dimensions AS TEXT)), 0)"))
    connection.execute(sa.text("DROP TABLE dimension_set_map"))
    with op.batch_alter_table('usage_records') as batch:
        batch.drop_column('dimensions')


def downgrade() -> None:
    with op.batch_alter_table('usage_records') as batch:
        batch.add_column(sa.Column('dimensions', sa.JSON(), server_default='{}', nullable=False))
    op.execute("UPDATE usage_records SET dimensions = (SELECT s.dimensions FROM usage_dimension_sets s "
               "WHERE s.id = usage_records.dimension_set_id) WHERE dimension_set_id <> 0")
    with op.batch_alter_table('usage_records') as batch:
        batch.drop_column('dimension_set_id')
    op.drop_table('usage_dimension_sets')
