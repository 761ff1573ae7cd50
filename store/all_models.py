"""Import every module that defines tables, so ``Base.metadata`` is complete.

Each feature adds one import line here.
"""

from store import models  # noqa: F401
from store.audit import chain, misuse  # noqa: F401  (audit chain, checkpoints, misuse alerts)
from store.delivery import deliveries, outbox, schedule  # noqa: F401
from store.lifecycle import decommission, retention  # noqa: F401
from store.people import access, conversations, credentials  # noqa: F401
from store.register import name_counts  # noqa: F401
