"""twin: an asynchronous, actor-based digital twin of connected cars, on trio.

`twin.protocol` is the wire catalogue and codec, `twin.model` the sans-I/O rules,
`twin.actors` the trio runtime that runs them.
"""

from .errors import (
    Code as Code,
    CommandRefused as CommandRefused,
    DeliveryError as DeliveryError,
    ProtocolError as ProtocolError,
    TwinError as TwinError,
)

__version__ = "0.1.0"
