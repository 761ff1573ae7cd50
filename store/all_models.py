"""Import every module that defines tables, so ``Base.metadata`` is complete.

Each feature adds one import line here.
"""

from store import models  # noqa: F401
from store import deliveries  # noqa: F401
from store import conversations  # noqa: F401
from store import decommission, lifecycle  # noqa: F401
from store import access, outbox, schedule  # noqa: F401  (access control, notice claims, scheduler)
from store import credentials  # noqa: F401
from store import name_counts  # noqa: F401
from store import audit_chain, misuse  # noqa: F401  (issue 7: audit chain, checkpoints, misuse alerts)
