"""The sans-I/O rules of the twin: vehicle, person and operator desk as pure state machines.

`VEHICLE.step(state, envelope, now) -> (state, outbox)` holds every rule of docs/rules.md; no trio,
no sockets, no wall clock. The actor runtime (`twin.actors`) is a thin shell around these.
"""

from ._state import (
    Actuation as Actuation,
    ClimateState as ClimateState,
    ContractState as ContractState,
    DigitalKey as DigitalKey,
    Driver as Driver,
    Pending as Pending,
    SecurityState as SecurityState,
    Share as Share,
    SoftwareState as SoftwareState,
    Status as Status,
    VehicleInfoData as VehicleInfoData,
    VehicleState as VehicleState,
    WifiState as WifiState,
    new_vehicle as new_vehicle,
)
from .config import DEFAULT_ALERTS as DEFAULT_ALERTS, DEFAULT_CONFIG as DEFAULT_CONFIG, ModelConfig as ModelConfig
from .operator import OPERATOR as OPERATOR, OperatorModel as OperatorModel, OperatorState as OperatorState, new_operator as new_operator
from .security import snapshot as snapshot
from .user import USER as USER, UserModel as UserModel, UserState as UserState, new_user as new_user
from .vehicle import VEHICLE as VEHICLE, VehicleModel as VehicleModel
