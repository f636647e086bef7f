"""The guard engine: budgets, breakers, validation, routing. No Slack, no aiohttp here."""
