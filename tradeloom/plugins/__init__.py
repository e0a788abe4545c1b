"""tradeloom.plugins."""
