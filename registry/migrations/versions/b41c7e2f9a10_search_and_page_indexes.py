"""search and page indexes: folded product names, trigram search, products by creator

Revision ID: b41c7e2f9a10
Revises: 7d2e91c4a0b3
Create Date: 2026-11-26 19:00:00.000000

"""
import unicodedata

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b41c7e2f9a10'
down_revision = '7d2e91c4a0b3'
branch_labels = None
depends_on = None


def _fold(text):
    # The same folding as registry/search.py, written here so the migration never changes.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('search_name', sa.String(length=80), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_products_created_by_id'), ['created_by_id'])
    products = sa.table('products', sa.column('id', sa.Integer), sa.column('name', sa.String),
                        sa.column('search_name', sa.String))
    rows = bind.execute(sa.select(products.c.id, products.c.name)).all()
    for row_id, name in rows:
        bind.execute(products.update().where(products.c.id == row_id)
                     .values(search_name=_fold(name)))
    op.create_index(
        'ix_products_search_name_trgm', 'products', ['search_name'],
        postgresql_using='gin', postgresql_ops={'search_name': 'gin_trgm_ops'})
    op.create_index(
        'ix_product_contacts_email_trgm', 'product_contacts', ['email'],
        postgresql_using='gin', postgresql_ops={'email': 'gin_trgm_ops'})


def downgrade():
    op.drop_index('ix_product_contacts_email_trgm', table_name='product_contacts')
    op.drop_index('ix_products_search_name_trgm', table_name='products')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_products_created_by_id'))
        batch_op.drop_column('search_name')
