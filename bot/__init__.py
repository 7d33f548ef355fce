"""keybot: manage your projects' API keys from Slack."""
