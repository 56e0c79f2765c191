"""MongoDB storage: connection, indexes, filter translation, pagination."""
