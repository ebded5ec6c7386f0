"""/api/v1: tokens per product, ministry or everything (api_tokens, each with an account of its
own), the calls each made per minute (api_calls), counted by every process together, and the
first answer to each Idempotency-Key (api_idempotency)

Revision ID: e9c3a5f7b2d4
Revises: d4f7a2c9e1b3
Create Date: 2026-12-03 16:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e9c3a5f7b2d4'
down_revision = 'd4f7a2c9e1b3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=80), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=12), nullable=False),
        sa.Column('scope', sa.String(length=10), nullable=False),
        sa.Column('access', sa.String(length=10), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=True),
        sa.Column('ministry_code', sa.String(length=10), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint("scope IN ('product', 'ministry', 'all')", name=op.f('ck_api_tokens_scope_known')),
        sa.CheckConstraint("access IN ('read', 'request', 'decide')", name=op.f('ck_api_tokens_access_known')),
        sa.CheckConstraint(
            "(scope = 'product' AND product_id IS NOT NULL AND access <> 'decide')"
            " OR (scope = 'ministry' AND ministry_code IS NOT NULL AND access <> 'request')"
            " OR (scope = 'all' AND access <> 'request')",
            name=op.f('ck_api_tokens_scope_fits_access'),
        ),
        sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_api_tokens_product_id_products')),
        sa.ForeignKeyConstraint(['ministry_code'], ['ministries.code'], name=op.f('fk_api_tokens_ministry_code_ministries')),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_api_tokens_created_by_id_users')),
        sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_api_tokens_revoked_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash')),
        sa.UniqueConstraint('user_id', name=op.f('uq_api_tokens_user_id')),
    )
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_product_id'), ['product_id'], unique=False)
    op.create_table(
        'api_calls',
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('minute', sa.DateTime(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_api_calls_token_id_api_tokens'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_id', 'minute', name=op.f('pk_api_calls')),
    )


    op.create_table(
        'api_idempotency',
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('call', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('location', sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(['token_id'], ['api_tokens.id'], name=op.f('fk_api_idempotency_token_id_api_tokens'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_id', 'key', name=op.f('pk_api_idempotency')),
    )


def downgrade():
    op.drop_table('api_idempotency')
    op.drop_table('api_calls')
    with op.batch_alter_table('api_tokens') as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_product_id'))
    op.drop_table('api_tokens')
