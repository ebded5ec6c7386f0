"""requests: one index on (product_id, id) in place of the one on product_id, so a search that
finds thousands of products reads its page of request ids from the index alone

Revision ID: a7c4e2b9d1f3
Revises: f3b9d2a7c1e5
Create Date: 2026-11-27 01:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a7c4e2b9d1f3'
down_revision = 'f3b9d2a7c1e5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_product_id_id', ['product_id', 'id'], unique=False)
        batch_op.drop_index('ix_requests_product_id')


def downgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('ix_requests_product_id', ['product_id'], unique=False)
        batch_op.drop_index('ix_requests_product_id_id')
