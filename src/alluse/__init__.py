"""alluse: the system of record and rule engine for the ALL-USE options-income method."""

__version__ = "0.1.0"
