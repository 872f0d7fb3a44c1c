"""The mapped classes that prepared statements (`storage.prepared`) load, one `Entity` each."""

from __future__ import annotations

from storage.prepared import Entity
from storage.tables import (
    Client,
    ClientIdentity,
    Conversation,
    Feedback,
    LoyaltyEntry,
    Outbox,
    Staff,
    Visit,
)

CLIENT = Entity(Client)
CONVERSATION = Entity(Conversation)
FEEDBACK = Entity(Feedback)
IDENTITY = Entity(ClientIdentity)
LOYALTY_ENTRY = Entity(LoyaltyEntry)
OUTBOX = Entity(Outbox)
STAFF = Entity(Staff)
VISIT = Entity(Visit)
