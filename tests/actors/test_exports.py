"""The public surface of `twin.actors`: what `__init__` re-exports, and nothing private."""

from __future__ import annotations

import twin.actors

PUBLIC = {
    "ActorStatistics",
    "AddressBook",
    "Behaviour",
    "Clock",
    "Fleet",
    "FleetStatistics",
    "Inbox",
    "Mailbox",
    "MailboxStatistics",
    "Router",
    "RouterStatistics",
    "is_request",
    "open_fleet",
}


def test_public_names() -> None:
    exported = {name for name in vars(twin.actors) if not name.startswith("_")}
    modules = {"_behaviour", "_fleet", "_mailbox", "_router"}
    assert exported == PUBLIC
    assert modules <= set(vars(twin.actors))
    for name in PUBLIC:
        assert getattr(twin.actors, name).__module__.startswith("twin.actors._")
