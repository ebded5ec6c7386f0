"""Quotas over time: increases that end by themselves (requests.quota_ends_on,
temporary_increases), right-sizing offers (saving_offers) and the runs of the weekly checks
(schedule_runs)

Revision ID: d4f7a2c9e1b3
Revises: b7e2c4a9d3f1
Create Date: 2026-12-03 16:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd4f7a2c9e1b3'
down_revision = 'b7e2c4a9d3f1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('requests') as batch_op:
        batch_op.add_column(sa.Column('quota_ends_on', sa.Date(), nullable=True))

    op.create_table(
        'temporary_increases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('restore', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('warned_at', sa.DateTime(), nullable=True),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=True),
        sa.Column('revert_request_id', sa.Integer(), nullable=True),
        sa.Column('waiting_on_request_id', sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('reverted', 'kept', 'superseded', 'changed')",
            name=op.f('ck_temporary_increases_outcome_known'),
        ),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_temporary_increases_product_id_products')),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_temporary_increases_request_id_requests')),
        sa.ForeignKeyConstraint(['revert_request_id'], ['requests.id'], name=op.f('fk_temporary_increases_revert_request_id_requests')),
        sa.ForeignKeyConstraint(['waiting_on_request_id'], ['requests.id'], name=op.f('fk_temporary_increases_waiting_on_request_id_requests')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_temporary_increases')),
        sa.UniqueConstraint('request_id', name=op.f('uq_temporary_increases_request_id')),
    )
    with op.batch_alter_table('temporary_increases') as batch_op:
        batch_op.create_index(
            'uq_temporary_increases_open_per_product', ['product_id'], unique=True,
            postgresql_where=sa.text('outcome IS NULL'), sqlite_where=sa.text('outcome IS NULL'),
        )
        batch_op.create_index('ix_temporary_increases_outcome_ends_on', ['outcome', 'ends_on'])

    op.create_table(
        'saving_offers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('proposal', sa.JSON(), nullable=False),
        sa.Column('monthly_saving', sa.Double(), nullable=False),
        sa.Column('window_days', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.Column('answered_by_id', sa.Integer(), nullable=True),
        sa.Column('request_id', sa.Integer(), nullable=True),
        sa.Column('silenced_until', sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('offered', 'applied', 'dismissed', 'withdrawn')",
            name=op.f('ck_saving_offers_state_known'),
        ),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_saving_offers_product_id_products')),
        sa.ForeignKeyConstraint(['answered_by_id'], ['users.id'], name=op.f('fk_saving_offers_answered_by_id_users')),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_saving_offers_request_id_requests')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saving_offers')),
    )
    with op.batch_alter_table('saving_offers') as batch_op:
        batch_op.create_index(
            'uq_saving_offers_open_per_product', ['product_id'], unique=True,
            postgresql_where=sa.text("state = 'offered'"), sqlite_where=sa.text("state = 'offered'"),
        )
        batch_op.create_index('ix_saving_offers_product_id_silenced_until', ['product_id', 'silenced_until'])

    op.create_table(
        'schedule_runs',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('last_run_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_schedule_runs')),
    )


def downgrade():
    op.drop_table('schedule_runs')
    with op.batch_alter_table('saving_offers') as batch_op:
        batch_op.drop_index('ix_saving_offers_product_id_silenced_until')
        batch_op.drop_index('uq_saving_offers_open_per_product', postgresql_where=sa.text("state = 'offered'"), sqlite_where=sa.text("state = 'offered'"))
    op.drop_table('saving_offers')
    with op.batch_alter_table('temporary_increases') as batch_op:
        batch_op.drop_index('ix_temporary_increases_outcome_ends_on')
        batch_op.drop_index('uq_temporary_increases_open_per_product', postgresql_where=sa.text('outcome IS NULL'), sqlite_where=sa.text('outcome IS NULL'))
    op.drop_table('temporary_increases')
    with op.batch_alter_table('requests') as batch_op:
        batch_op.drop_column('quota_ends_on')
