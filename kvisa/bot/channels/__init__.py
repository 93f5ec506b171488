"""Channel adapters: they convert platform messages to Inbound and Outbound to platform calls."""
