"""Base classes of the messages the buses carry: commands (write side) and queries (read side)."""

from __future__ import annotations

from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.contract.versioned_events import utc_now


class Command(BaseModel):
    """An intent to change state. ``command_id`` identifies it in the events it causes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: UUID = Field(default_factory=uuid4)
    timestamp: AwareDatetime = Field(default_factory=utc_now)


class Query(BaseModel):
    """A question for a read model. Answered from MongoDB only."""

    model_config = ConfigDict(frozen=True, extra="forbid")
