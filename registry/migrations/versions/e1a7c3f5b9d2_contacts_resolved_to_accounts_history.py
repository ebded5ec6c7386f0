"""contacts resolved to accounts (access by account, not by a typed email), the history of
who held each contact role (separation of duties), and requests by requester

Revision ID: e1a7c3f5b9d2
Revises: c5d8e1f4a2b6
Create Date: 2026-12-03 09:00:00.000000

Existing contacts are linked to the accounts with their email, and each live contact opens a
history row from the product's creation: every account's email was made by an administrator or
signed in from the identity provider before this revision.
"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e1a7c3f5b9d2'
down_revision = 'c5d8e1f4a2b6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('product_contacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_product_contacts_user_id', ['user_id'], unique=False)
        batch_op.create_foreign_key(
            'fk_product_contacts_user_id_users', 'users', ['user_id'], ['id']
        )
    op.create_table(
        'product_contact_history',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'primary_lead', 'secondary_lead')",
            name=op.f('ck_product_contact_history_role_known'),
        ),
        sa.ForeignKeyConstraint(
            ['product_id'], ['products.id'],
            name=op.f('fk_product_contact_history_product_id_products'),
        ),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name=op.f('fk_product_contact_history_user_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_product_contact_history')),
    )
    with op.batch_alter_table('product_contact_history', schema=None) as batch_op:
        batch_op.create_index('ix_product_contact_history_product_id', ['product_id'])
        batch_op.create_index('ix_product_contact_history_email', ['email'])
        batch_op.create_index('ix_product_contact_history_user_id', ['user_id'])
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(
            'ix_requests_requested_by_id_created_at', ['requested_by_id', 'created_at']
        )

    op.execute(
        "UPDATE product_contacts SET user_id = "
        "(SELECT users.id FROM users WHERE users.email = product_contacts.email)"
    )
    op.execute(
        "INSERT INTO product_contact_history (product_id, role, email, user_id, started_at) "
        "SELECT c.product_id, c.role, c.email, c.user_id, p.created_at "
        "FROM product_contacts c JOIN products p ON p.id = c.product_id"
    )


def downgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('ix_requests_requested_by_id_created_at')
    op.drop_table('product_contact_history')
    with op.batch_alter_table('product_contacts', schema=None) as batch_op:
        batch_op.drop_constraint('fk_product_contacts_user_id_users', type_='foreignkey')
        batch_op.drop_index('ix_product_contacts_user_id')
        batch_op.drop_column('user_id')
