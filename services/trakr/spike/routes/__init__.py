"""One module per resource; `ROUTERS` is what app.py mounts."""
