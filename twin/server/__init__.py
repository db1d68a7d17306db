"""The websocket hub: apps and simulated cars talk to the twin over real websockets.

`serve_hub(store, config, task_status=...)` runs a hub until `Hub.shutdown()`; `open_hub` is
the same as an async context manager. The protocol is in docs/protocol.md.
"""

from ._hub import (
    Hub as Hub,
    HubConfig as HubConfig,
    HubStatistics as HubStatistics,
    open_hub as open_hub,
    serve_hub as serve_hub,
)
from ._gc import GC_PERIOD_S as GC_PERIOD_S, pace_gc as pace_gc, tune_gc as tune_gc
from ._states import from_plain as from_plain, to_plain as to_plain
