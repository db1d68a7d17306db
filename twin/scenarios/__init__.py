"""Scenarios: the hypothesis strategies that build messages, cars and their timelines.

The tests and `twin explore` draw from the same strategies, so a failure found by one can be
replayed by the other.
"""

from .strategies import (
    ACCOUNTS as ACCOUNTS,
    EPOCH as EPOCH,
    EVERYDAY_EVENTS as EVERYDAY_EVENTS,
    FRIEND_ANSWERS as FRIEND_ANSWERS,
    FRIENDS as FRIENDS,
    OPERATOR_COMMANDS as OPERATOR_COMMANDS,
    OWNER as OWNER,
    REMOTE_USE as REMOTE_USE,
    STRANGER as STRANGER,
    Step as Step,
    addresses as addresses,
    commands as commands,
    envelopes as envelopes,
    error_codes as error_codes,
    events as events,
    fleet_step as fleet_step,
    fleet_steps as fleet_steps,
    message_of as message_of,
    messages as messages,
    positions as positions,
    trip as trip,
    values_of as values_of,
    vehicles as vehicles,
)

# scenario files, replays and exploration (docs/scenarios.md)
from ._format import (
    CarSpec as CarSpec,
    DriverSpec as DriverSpec,
    Expect as Expect,
    Scenario as Scenario,
    ScenarioError as ScenarioError,
    ScenarioStep as ScenarioStep,
    ShareSpec as ShareSpec,
    format_duration as format_duration,
    load_scenario as load_scenario,
    parse_duration as parse_duration,
    parse_scenario as parse_scenario,
)
from ._writer import dump_scenario as dump_scenario
from ._match import Check as Check, Delivery as Delivery
from ._runner import (
    Outcome as Outcome,
    Report as Report,
    open_run as open_run,
    replay as replay,
    run_scenario as run_scenario,
)
from ._report import Printer as Printer, json_results as json_results, junit_xml as junit_xml
from .invariants import INVARIANTS as INVARIANTS, Invariants as Invariants, Observation as Observation
from .explore import (
    ExploreResult as ExploreResult,
    InvariantBroken as InvariantBroken,
    explore as explore,
    explore_example as explore_example,
    fleets as fleets,
    run_example as run_example,
)
from .trace import (
    TraceWriter as TraceWriter,
    load_trace as load_trace,
    open_recorded_hub as open_recorded_hub,
    open_recording_proxy as open_recording_proxy,
    replay_trace as replay_trace,
)
