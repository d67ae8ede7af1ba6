"""Python client SDK for the rewards service."""
