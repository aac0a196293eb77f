"""Everything that talks to the outside: executors, transports and storage clients."""
