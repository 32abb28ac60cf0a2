"""Secrets kept out of everything the workbench writes or shows, and control characters made visible.

The one owner of:

- :data:`API_KEY_ENV`: the only place the Claude API key is read from (never a setting, never a file);
- :data:`KEY_PATTERN`: what an Anthropic API key looks like, wherever it turns up in text;
- :data:`SECRET_FIELDS`: the mapping keys whose value is a credential in a recorded request
  (headers such as ``x-api-key``, fields such as ``api_key``): :func:`scrub` replaces the value,
  whatever it holds;
- :func:`looks_like_secret_name`: a name (a setting, an option) that suggests it holds a secret
  (``key``, ``token``, ``secret``, ``passw``, ``credential`` anywhere in it). Settings refuse such
  names. It is broader than :data:`SECRET_FIELDS` on purpose: a false alarm in a settings file costs
  a rename, while blanking every field named like ``max_tokens`` in a recorded exchange would
  destroy the record;
- :func:`env_secrets`: the secret values set in this process's environment (the API key);
- :func:`scrub`: a value (text, or mappings and lists of them, recursively) with all of the above
  replaced by :data:`REDACTED`;
- :func:`escape_control`: control and bidirectional-override characters shown as ``\\xNN`` /
  ``\\uNNNN`` (terminal escapes, text direction tricks), for model text in messages and terminals.

>>> scrub({"headers": {"X-Api-Key": "abc"}, "note": "key sk-ant-api03-0123456789 used"})
{'headers': {'X-Api-Key': '<redacted>'}, 'note': 'key sk-ant-<redacted> used'}
>>> scrub(["token abc123 here"], extra_secrets=["abc123"])
['token <redacted> here']
>>> looks_like_secret_name("github_token"), looks_like_secret_name("crop_size")
(True, False)
>>> escape_control("ok\\x1b[31m red\\u202e")
'ok\\\\x1b[31m red\\\\u202e'
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "API_KEY_ENV",
    "KEY_PATTERN",
    "SECRET_FIELDS",
    "REDACTED",
    "looks_like_secret_name",
    "env_secrets",
    "scrub",
    "escape_control",
]

#: The environment variable the Claude API key is read from; the only place it lives.
API_KEY_ENV = "ANTHROPIC_API_KEY"
#: An Anthropic API key (``sk-ant-`` and at least four key characters), anywhere in a text.
KEY_PATTERN = re.compile(r"sk-ant-[A-Za-z0-9_\-]{4,}")
#: Mapping keys (compared lower-cased) whose value is a credential in a recorded request.
SECRET_FIELDS = frozenset({"api_key", "x-api-key", "authorization", "proxy-authorization", "anthropic_api_key"})
#: What a secret is replaced with.
REDACTED = "<redacted>"

_SECRET_NAME = re.compile(r"key|token|secret|passw|credential", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def looks_like_secret_name(name: str) -> bool:
    """True when ``name`` suggests its value is a secret (``api_key``, ``github_token``, ``password``, ...)."""
    return bool(_SECRET_NAME.search(name))


def env_secrets() -> list[str]:
    """The secret values of this process's environment: the API key, when it is set."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    return [key] if key else []


def scrub(value: Any, extra_secrets: Iterable[str] = ()) -> Any:
    """``value`` with every secret replaced by :data:`REDACTED`, recursively through mappings and lists.

    In text: the environment's secrets (:func:`env_secrets`), ``extra_secrets`` and anything shaped
    like an API key (:data:`KEY_PATTERN`, shown as ``sk-ant-<redacted>``). In mappings: the value of
    every key in :data:`SECRET_FIELDS`. Tuples come back as lists; other values unchanged.
    """
    secrets = [s for s in (*env_secrets(), *extra_secrets) if s]
    return _scrub(value, secrets)


def _scrub(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, REDACTED)
        return KEY_PATTERN.sub("sk-ant-" + REDACTED, value)
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and k.lower() in SECRET_FIELDS else _scrub(v, secrets))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secrets) for v in value]
    return value


def escape_control(text: str) -> str:
    """``text`` with control and bidi characters shown as ``\\xNN`` / ``\\uNNNN`` (tab and newline kept)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
                        text)
