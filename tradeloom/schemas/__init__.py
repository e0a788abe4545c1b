"""tradeloom.schemas."""
