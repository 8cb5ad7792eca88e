"""Reading one ``[providers.NAME]`` config section with clear errors.

Adapters validate their options once, in ``from_config``: an unknown key, a missing
required key or a value of the wrong type raises :class:`~convo.exceptions.ConfigError`
naming ``[providers.NAME] key`` and what was expected. Values are never echoed back in
errors, because many of them are secrets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from convo.exceptions import ConfigError

#: Keys any section may carry: ``type`` picks the adapter (``registry.provider_kind``).
COMMON_KEYS = frozenset({"type"})


class ProviderOptions:
    """Typed getters over one provider section; rejects keys outside ``known`` at once."""

    def __init__(self, name: str, options: Mapping[str, Any], known: Iterable[str]) -> None:
        self.name = name
        self._options = options
        allowed = COMMON_KEYS | frozenset(known)
        unknown = sorted(str(k) for k in options if k not in allowed)
        if unknown:
            raise ConfigError(
                f"{self.where(unknown[0])}: unknown option; expected one of "
                f"{', '.join(sorted(allowed - COMMON_KEYS))}"
            )

    def section(self) -> str:
        """``file: [providers.NAME]`` (the file when the section knows it)."""
        source = getattr(self._options, "source", "")
        return f"{source + ': ' if source else ''}[providers.{self.name}]"

    def where(self, key: str) -> str:
        """``file: [providers.NAME] key``."""
        return f"{self.section()} {key}"

    def raw(self, key: str) -> Any:
        """The value as written (None when absent), for readers of composite options
        that check it themselves (e.g. :meth:`convo.media.MediaPolicy.from_options`)."""
        return self._options.get(key)

    def has(self, key: str) -> bool:
        return self._options.get(key) not in (None, "")

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        """A non-empty string; ``default`` (or ``""``) when absent unless ``required``."""
        value = self._options.get(key)
        if value is None or value == "":
            if required:
                raise ConfigError(f"{self.where(key)}: missing; expected a non-empty string")
            return default if default is not None else ""
        if not isinstance(value, str):
            raise ConfigError(f"{self.where(key)}: expected a string, got {type(value).__name__}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._options.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(
                f"{self.where(key)}: expected true or false, got {type(value).__name__}"
            )
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        """A float > ``minimum`` (ints accepted; booleans are not numbers here)."""
        value = self._options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.where(key)}: expected a number, got {type(value).__name__}")
        if value <= minimum:
            raise ConfigError(f"{self.where(key)}: must be greater than {minimum:g}")
        return float(value)

    def integer(self, key: str, default: int | None, *, minimum: int = 1) -> int | None:
        """A whole number >= ``minimum``, or ``default`` when absent."""
        value = self._options.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(
                f"{self.where(key)}: expected a whole number, got {type(value).__name__}"
            )
        if value < minimum:
            raise ConfigError(f"{self.where(key)}: must be at least {minimum}")
        return value

    def base_url(self, default: str) -> str:
        """``base_url`` without a trailing slash; must be http(s)."""
        url = self.string("base_url", default).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.where('base_url')}: expected an http:// or https:// URL")
        return url

    def locales(self, key: str, default: Sequence[str]) -> tuple[str, ...]:
        """A non-empty list of locale strings (``default`` when absent)."""
        value = self._options.get(key, list(default))
        if (
            not isinstance(value, list | tuple)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise ConfigError(f"{self.where(key)}: expected a non-empty list of locales")
        return tuple(value)

    def locale_table(self, key: str) -> dict[str, tuple[str, ...]]:
        """A table locale -> list of fallback locales (empty when absent)."""
        value = self._options.get(key, {})
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.where(key)}: expected a table locale -> [locales]")
        return {str(k): ProviderOptions(self.name, value, value).locales(str(k), ()) for k in value}
