"""provider_sessions: the identity provider's tokens of each single sign-on session, kept on
the server (the session cookie holds only a random handle)

Revision ID: 9e4b7c2d1a58
Revises: f1c6a8e2d4b9
Create Date: 2026-11-28 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9e4b7c2d1a58'
down_revision = 'f1c6a8e2d4b9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'provider_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('handle_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('session_version', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('provider_sid', sa.String(length=255), nullable=True),
        sa.Column('id_token', sa.Text(), nullable=False),
        sa.Column('access_token', sa.Text(), nullable=True),
        sa.Column('refresh_token', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('checked_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_provider_sessions_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_sessions')),
        sa.UniqueConstraint('handle_hash', name=op.f('uq_provider_sessions_handle_hash')),
    )
    with op.batch_alter_table('provider_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_sessions_user_id'), ['user_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_provider_sessions_provider_sid'), ['provider_sid'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_provider_sessions_created_at'), ['created_at'],
                              unique=False)


def downgrade():
    op.drop_table('provider_sessions')
