"""The database: the schema (`models`, `models_outbound`), sessions, migrations and the
idempotent insert.

Importing anything here loads every table, so that `Base.metadata` is the whole schema
(for Alembic, the sweep's delete order, the tests' clean-up) whichever model module was
imported first. The table modules themselves only import downwards: outbound tables build
on `models`, never the other way round.
"""

from callgateway.db import models, models_outbound  # noqa: F401  (every table registered)
