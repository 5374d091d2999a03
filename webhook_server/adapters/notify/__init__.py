"""Notifications: Block Kit rendering, the Slack client, and the outbox sender."""
