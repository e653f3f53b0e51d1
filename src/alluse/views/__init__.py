"""Read models: the queries entrypoints (CLI, API, web) ask of the database.

Cosmic Python's ``views.py``: reads are not use cases, so they skip the unit of work and the domain and
read the tables directly. Entrypoints import from here and from ``services``, never from ``store``.
One module per area.
"""
