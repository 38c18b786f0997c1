"""Encryption at rest (data source passwords, secrets) with MultiFernet key rotation."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    if not plaintext:
        return ""
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # Never echo the token: it is a secret too.
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with the configured keys."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the first (newest) key."""
    if not token:
        return ""
    return fernet().rotate(token.encode()).decode()


def is_current(token: str) -> bool:
    """The token is encrypted with the first (newest) key: rotating it would change nothing."""
    if not token:
        return True
    key = settings.FIELD_ENCRYPTION_KEYS[0]
    try:
        Fernet(key.encode() if isinstance(key, str) else key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True
