"""The old name of ``lstmcast.registry``: the same module object, so old imports and patches keep working."""

import sys

from lstmcast import registry

sys.modules[__name__] = registry
