"""Team mode's control plane: the HTTP API over the service, its authentication, and its runner."""
