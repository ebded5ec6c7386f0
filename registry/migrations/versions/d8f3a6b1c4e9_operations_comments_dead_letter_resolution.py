"""operations: timeline entries that move nothing (comments, dead letters, reminders), dead
letters replayed or discarded, one stuck reminder per request and threshold

Revision ID: d8f3a6b1c4e9
Revises: c5a1d8e3f2b7
Create Date: 2026-11-26 21:35:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd8f3a6b1c4e9'
down_revision = 'c5a1d8e3f2b7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sa.String(length=20), server_default='transition', nullable=False))
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolution', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('resolved_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolution_note', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_dead_letters_request_id'), ['request_id'])
        batch_op.create_foreign_key(
            batch_op.f('fk_dead_letters_request_id_requests'), 'requests', ['request_id'], ['id'])
        batch_op.create_foreign_key(
            batch_op.f('fk_dead_letters_resolved_by_id_users'), 'users', ['resolved_by_id'],
            ['id'])
    op.create_table(
        'stuck_reminders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=60), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'),
                  nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['requests.id'],
                                name=op.f('fk_stuck_reminders_request_id_requests')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_stuck_reminders')),
        sa.UniqueConstraint('request_id', 'key', name='uq_stuck_reminders_request_key'),
    )


def downgrade():
    op.drop_table('stuck_reminders')
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_dead_letters_resolved_by_id_users'),
                                 type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_dead_letters_request_id_requests'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_dead_letters_request_id'))
        batch_op.drop_column('resolution_note')
        batch_op.drop_column('resolved_by_id')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('resolution')
        batch_op.drop_column('request_id')
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_column('kind')
