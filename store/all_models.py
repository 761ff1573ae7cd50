"""Import every module that defines tables, so ``Base.metadata`` is complete.

Each feature adds one import line here.
"""

from store import models  # noqa: F401
from store import audit_chain, misuse  # noqa: F401  (issue 7: audit chain, checkpoints, misuse alerts)
