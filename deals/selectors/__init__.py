"""Read queries shared by pages, the API and dashboards.

One package, one module per area; import from `deals.selectors`.
"""

from .audit import *  # noqa: F403
from .core import *  # noqa: F403
from .deal_page import *  # noqa: F403
from .quotas import *  # noqa: F403
from .saved_views import *  # noqa: F403
from .workspace import *  # noqa: F403
