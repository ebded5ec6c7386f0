"""products: an index on ministry_code, so All requests filtered by a ministry finds its
products through the index instead of reading every product

Revision ID: c5d8e1f4a2b6
Revises: a7c4e2b9d1f3
Create Date: 2026-11-27 05:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5d8e1f4a2b6'
down_revision = 'a7c4e2b9d1f3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index('ix_products_ministry_code', ['ministry_code'], unique=False)


def downgrade():
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_ministry_code')
