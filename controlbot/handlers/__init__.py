"""Feature routers of the control bot; `__main__` includes them in order (see `app.routers`)."""
