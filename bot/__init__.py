"""The Nightshift process: HTTP API, Slack surface, scheduler and command line."""
