"""Agency broadcasts: segments, a durable queue in the storage, paced delivery, admin tools."""
