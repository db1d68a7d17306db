"""An async client of the twin hub, on trio: app sessions for prototypes and tests, and
vehicle links that play a car's telematics unit (report events, carry out actuations)."""

from ._client import (
    Actuator as Actuator,
    AppSession as AppSession,
    LoginFailed as LoginFailed,
    Outcome as Outcome,
    VehicleLink as VehicleLink,
    open_app_session as open_app_session,
    open_vehicle_link as open_vehicle_link,
    open_websocket as open_websocket,
    raise_for as raise_for,
)
