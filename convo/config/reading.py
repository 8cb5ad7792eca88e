"""Reading a TOML document: ``${VAR}`` expanded from the environment in every string, and
typed getters over one table whose errors name the file, the table and the key (and never
echo a secret-looking value)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from convo.config.settings import is_secret_key
from convo.exceptions import ConfigError

ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Table:
    """Typed getters over one TOML table; ``where`` is ``convo.toml: [server]``."""

    def __init__(self, source: str, label: str, data: object, known: frozenset[str]) -> None:
        self.source, self.label = source, label
        if not isinstance(data, dict):
            raise ConfigError(f"{self.where()}: expected a table, got {shown(label, data)}")
        self.data: dict[str, Any] = data
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{self.where(unknown[0])}: unknown key; expected one of {', '.join(sorted(known))}"
            )

    def where(self, key: str | None = None) -> str:
        return f"{self.source}: {self.label}" + (f" {key}" if key else "")

    def _bad(self, key: str, expected: str) -> ConfigError:
        return ConfigError(
            f"{self.where(key)}: expected {expected}, got {shown(key, self.data[key])}"
        )

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer")
        if value < minimum or (maximum is not None and value > maximum):
            top = f" and at most {maximum}" if maximum is not None else ""
            raise ConfigError(f"{self.where(key)}: expected at least {minimum}{top}, got {value}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self._bad(key, f"one of {', '.join(choices)}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._bad(key, "a number greater than 0")
        return float(value)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.data.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return tuple(value)


def shown(key: str, value: object) -> str:
    """How a bad value appears in an error: its repr, unless the key looks secret."""
    if is_secret_key(key):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expand(value: Any, env: Mapping[str, str], where: str) -> Any:
    """``${VAR}`` expanded in every string of ``value`` (recursively)."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return env[name]

        return ENV_VAR.sub(sub, value)
    if isinstance(value, dict):
        return {
            k: expand(v, env, f"{where}.{k}" if "[" not in where else f"{where} {k}")
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand(v, env, where) for v in value]
    return value


def expand_document(data: dict[str, Any], env: Mapping[str, str], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for top, value in data.items():
        if top == "providers" and isinstance(value, dict):
            out[top] = {
                name: {
                    k: expand(v, env, f"{source}: [providers.{name}] {k}") for k, v in sec.items()
                }
                if isinstance(sec, dict)
                else sec
                for name, sec in value.items()
            }
        elif top == "lines" and isinstance(value, list):
            out[top] = [
                {k: expand(v, env, f"{source}: [[lines]] #{i + 1} {k}") for k, v in line.items()}
                if isinstance(line, dict)
                else line
                for i, line in enumerate(value)
            ]
        elif isinstance(value, dict):
            out[top] = {k: expand(v, env, f"{source}: [{top}] {k}") for k, v in value.items()}
        else:
            out[top] = expand(value, env, f"{source}: {top}")
    return out
