"""requests: the justification of a quota increase, and the usage evidence it was judged on
(figures, window, verdict: registry/usage/rules.py)

Revision ID: b7e2c4a9d3f1
Revises: 9e4b7c2d1a58
Create Date: 2026-12-03 13:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e2c4a9d3f1'
down_revision = '9e4b7c2d1a58'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('requests') as batch_op:
        batch_op.add_column(sa.Column('justification', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('usage_evidence', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('requests') as batch_op:
        batch_op.drop_column('usage_evidence')
        batch_op.drop_column('justification')
