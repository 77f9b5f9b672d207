"""The HTTP API: routes over the service, one error shape."""
