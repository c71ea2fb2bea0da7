"""Database access: models, engine and sessions, migrations, leases and accrual claims."""

from core.db.session import Database, DatabaseUrlError

__all__ = ["Database", "DatabaseUrlError"]
