"""The actor runtime: every car, person and the operator desk is a trio actor.

An actor is a pure `Behaviour` (the model's `step`/`advance`/`next_deadline`) run by a thin
task with a bounded `Mailbox`. `open_fleet` runs a supervised set of them behind a `Router`
(in process: the `AddressBook`), with tell and ask, crash recovery from the last good
state, and passivation of idle actors so that a million cars fit in memory.
"""

from ._behaviour import Behaviour as Behaviour, Clock as Clock
from ._fleet import (
    ActorStatistics as ActorStatistics,
    Fleet as Fleet,
    FleetStatistics as FleetStatistics,
    is_request as is_request,
    open_fleet as open_fleet,
)
from ._mailbox import Mailbox as Mailbox, MailboxStatistics as MailboxStatistics
from ._router import (
    AddressBook as AddressBook,
    Inbox as Inbox,
    Router as Router,
    RouterStatistics as RouterStatistics,
)
