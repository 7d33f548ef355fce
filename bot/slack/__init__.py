"""keybot's Slack surface: the Bolt app, its listeners, Block Kit builders and the error handler."""
