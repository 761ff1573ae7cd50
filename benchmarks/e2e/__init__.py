"""End-to-end benchmark: Slack slash commands in, private replies out, audit durable (see run.py)."""
