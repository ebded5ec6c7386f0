"""comments by person and time: the hourly number of submissions one person may send
(REQUEST_SUBMISSIONS_PER_HOUR) is counted from this index and requests' (requested_by_id,
created_at), not the whole tables

Revision ID: f1c6a8e2d4b9
Revises: e7a3c9d5b1f8
Create Date: 2026-12-01 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f1c6a8e2d4b9'
down_revision = 'e7a3c9d5b1f8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.create_index(
            'ix_request_events_comments_by_actor',
            ['actor_id', 'created_at'],
            unique=False,
            postgresql_where=sa.text("kind = 'comment'"),
            sqlite_where=sa.text("kind = 'comment'"),
        )


def downgrade():
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.drop_index('ix_request_events_comments_by_actor')
