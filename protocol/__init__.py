"""The typed protocol spoken between the control bot (and its HTTP API) and the runner.

Both sides import this package; nothing here touches Docker or Telegram.
"""
