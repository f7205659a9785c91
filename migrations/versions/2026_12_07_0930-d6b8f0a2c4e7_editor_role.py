"""staff: the editor role (edits, publishes and rolls back the lines' words in the browser)

Revision ID: d6b8f0a2c4e7
Revises: c5a7e9b1d3f6
Create Date: 2026-12-07 09:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "d6b8f0a2c4e7"
down_revision: str | None = "c5a7e9b1d3f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_ROLES = "role IN ('viewer', 'navigator', 'admin')"
NEW_ROLES = "role IN ('viewer', 'navigator', 'editor', 'admin')"


def upgrade() -> None:
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint("role", NEW_ROLES)


def downgrade() -> None:
    op.execute("UPDATE staff_users SET role = 'viewer' WHERE role = 'editor'")
    with op.batch_alter_table("staff_users") as batch_op:
        batch_op.drop_constraint(op.f("ck_staff_users_role"), type_="check")
        batch_op.create_check_constraint("role", OLD_ROLES)
