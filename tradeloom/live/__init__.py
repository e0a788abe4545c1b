"""Live and paper runs: the bar-close clock, the venue, and reloading the strategy file."""
