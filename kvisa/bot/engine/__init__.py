"""The channel-neutral conversation engine: Inbound in, Outbound out."""
