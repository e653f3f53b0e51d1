"""One module per resource. Each exposes `router`; app.py lists them in ROUTERS."""
