"""What list calls share: the secret their page tokens are signed with."""

from rewards_service.store import secrets


def page_token_secret() -> bytes:
    return secrets.secret(secrets.PAGE_TOKENS)
