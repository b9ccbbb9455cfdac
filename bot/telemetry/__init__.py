"""Telemetry for the people who run the bot: metrics (`metrics`), traces (`tracing`) and
structured events (`events`). Stages record at their choke points through `record`; nothing
here decides anything, and nothing recorded carries a secret, a person or free text as a label."""
