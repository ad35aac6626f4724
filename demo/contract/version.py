"""The metadata layout's version and the error every reader raises: what schema.py (this layout)
and migrate.py (the older ones) share, so that neither imports the other's module for it."""

SCHEMA_VERSION = 3  # bump it, and add a step to migrate.py, for any change a reader sees


class ContractError(ValueError):
    """Metadata that does not follow the schema; the message names the field or the version."""
