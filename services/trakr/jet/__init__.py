"""jet: run a scraper executable, validate its output, queue it."""
