"""Runtime safety layer (numpy + pydantic only): limits, shield, watchdog, e-stop, OOD gate."""
