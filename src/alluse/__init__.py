"""alluse: the system of record and rule engine for the ALL-USE options-income method."""

__version__ = "0.1.0"

# Where the embedded database lives unless --db or ALLUSE_DATABASE_URL says otherwise. Here, not only in
# config.Settings, so that a command line run without either finds it without loading pydantic.
DEFAULT_DATABASE_URL = "sqlite:///./alluse.db"
