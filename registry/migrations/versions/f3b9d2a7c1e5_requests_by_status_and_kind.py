"""requests: an index on (status, type), so the metrics' count of requests by kind and status
reads the index alone instead of the whole table

Revision ID: f3b9d2a7c1e5
Revises: d8f3a6b1c4e9
Create Date: 2026-11-27 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f3b9d2a7c1e5'
down_revision = 'd8f3a6b1c4e9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_status_type', ['status', 'type'], unique=False)


def downgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_status_type')
