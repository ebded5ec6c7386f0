"""day two: product states, automatic approval of edits, one-time submission keys

Revision ID: 7d2e91c4a0b3
Revises: 344ab34d549e
Create Date: 2026-11-26 18:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7d2e91c4a0b3'
down_revision = '344ab34d549e'
branch_labels = None
depends_on = None


DECIDED = (
    "'approved', 'provisioning', 'partially_provisioned', 'provisioned', 'failed', 'rejected'"
)
DECISION_2 = (
    f"(status IN ({DECIDED}) AND decided_by_id IS NOT NULL AND decided_at IS NOT NULL)"
    f" OR (NOT status IN ({DECIDED}) AND decided_by_id IS NULL AND decided_at IS NULL)"
)
DECISION_3 = (
    f"(status IN ({DECIDED}) AND decided_at IS NOT NULL"
    " AND (decided_by_id IS NOT NULL OR type = 'edit'))"
    f" OR (NOT status IN ({DECIDED}) AND decided_by_id IS NULL AND decided_at IS NULL)"
)
PRODUCT_STATUS_2 = "status IN ('pending_approval', 'approved', 'provisioned', 'deleted')"
PRODUCT_STATUS_3 = (
    "status IN ('requested', 'not_created', 'being_created', 'active', 'change_pending',"
    " 'change_applying', 'delete_pending', 'being_deleted', 'failed', 'deleted')"
)
# Before this revision every request was a create, so the old state names map one to one,
# except a product whose create failed, which the old names called "approved".
UP = {
    "pending_approval": "requested",
    "approved": "being_created",
    "provisioned": "active",
    "deleted": "not_created",
}


def _rename(mapping):
    for old, new in mapping.items():
        op.execute(sa.text("UPDATE products SET status = :new WHERE status = :old").bindparams(
            old=old, new=new))


def upgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('submission_key', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f('uq_requests_submission_key'), ['submission_key'])
        batch_op.drop_constraint(op.f('ck_requests_decision_matches_status'), type_='check')
        batch_op.create_check_constraint('decision_matches_status', DECISION_3)

    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_products_status_known'), type_='check')
    _rename(UP)
    op.execute(
        "UPDATE products SET status = 'failed'"
        " WHERE id IN (SELECT product_id FROM requests WHERE status = 'failed')"
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_check_constraint('status_known', PRODUCT_STATUS_3)


def downgrade():
    # Edits and deletes did not exist before: a downgrade keeps only what the old names can say.
    automatic = op.get_bind().scalar(sa.text(
        "SELECT count(*) FROM requests WHERE decided_at IS NOT NULL AND decided_by_id IS NULL"))
    if automatic:
        raise RuntimeError(
            f"{automatic} automatically approved edits cannot be kept by the older schema;"
            " downgrading would lose them.")
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_products_status_known'), type_='check')
    _rename({
        "requested": "pending_approval",
        "being_created": "approved",
        "failed": "approved",
        "active": "provisioned",
        "change_pending": "provisioned",
        "change_applying": "provisioned",
        "delete_pending": "provisioned",
        "being_deleted": "provisioned",
        "not_created": "deleted",
    })
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_check_constraint('status_known', PRODUCT_STATUS_2)

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_requests_decision_matches_status'), type_='check')
        batch_op.create_check_constraint('decision_matches_status', DECISION_2)
        batch_op.drop_constraint(batch_op.f('uq_requests_submission_key'), type_='unique')
        batch_op.drop_column('submission_key')
