"""The ``journal:`` section: where a run's journal lives (SQLite in its directory by default).

``journal: {url: ${TRADELOOM_JOURNAL_URL}}`` journals to a PostgreSQL database
instead, shared by every run that names it, keyed by run id. The URL is a secret: the
file holds only its ``${NAME}`` reference, and the value is redacted wherever it could
be written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from tradeloom.journal.location import DEFAULT_SCHEMA, SCHEMA_PATTERN, PgTarget
from tradeloom.schemas.secrets import Secret, secret_reference

__all__ = ["JournalSection", "journal_target"]

_SCHEMES = ("postgresql://", "postgres://")


class JournalSection(BaseModel):
    """Keys of ``journal:``."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr = Field(
        description="The PostgreSQL database to journal to, as an environment variable "
        "reference (${NAME}) holding a postgresql:// URL; never the URL itself.",
    )
    schema_name: str = Field(
        default=DEFAULT_SCHEMA,
        alias="schema",
        pattern=SCHEMA_PATTERN,
        description="The schema holding the journal's tables (made at the first run): "
        "lower-case letters, digits and _, at most 63.",
    )

    @field_validator("schema_name")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        # PostgreSQL reserves pg_* (CREATE SCHEMA refuses them) and keeps its catalogs there
        if value.startswith("pg_") or value == "information_schema":
            raise ValueError(
                f"'{value}' is a PostgreSQL system schema name (pg_* and information_schema "
                "are reserved); name the journal's own schema, such as tradeloom"
            )
        return value

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: object) -> object:
        if isinstance(value, Secret):
            url = value.get_secret_value()
            if not url.startswith(_SCHEMES):
                raise ValueError(
                    "must hold a postgresql:// URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
                )
            return value
        if secret_reference(value) is not None:
            return value  # an unset variable: reported as such
        # " was " in the message: the value is not appended (it may hold a password)
        raise ValueError(
            "must be an environment variable reference such as ${TRADELOOM_JOURNAL_URL}: "
            "the URL was written out (not shown: it may hold a password)"
        )


def journal_target(section: JournalSection | None) -> PgTarget | None:
    """Return the PostgreSQL database of ``section`` (None: the SQLite default)."""
    if section is None:
        return None
    url = section.url
    reference = url.reference if isinstance(url, Secret) else "journal.url"
    return PgTarget(url.get_secret_value(), reference, section.schema_name)
