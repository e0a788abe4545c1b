"""tradeloom.runner."""
