"""Outer middlewares of the control bot: locale first, then access control."""
