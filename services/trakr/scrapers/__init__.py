"""Scrapers shipped with trakr: each prints one University on stdout."""
