"""Label matchers, as routes, inhibition rules and silences write them.

Alertmanager's four operators: ``name=value``, ``name!=value``, ``name=~regex`` and
``name!~regex``. A regex must match the whole value (it is anchored), and a label the
alert does not have counts as the empty string, so ``team=""`` selects alerts without
a ``team`` label. Values may be double-quoted (``summary="a, b"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ai_trading.errors import ConfigError

_SYNTAX = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$')
OPERATORS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class Matcher:
    """``name op value``; see the module docstring."""

    name: str
    op: str
    value: str
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ConfigError(f"matcher {self.name}{self.op}{self.value}: operator must be one of {', '.join(OPERATORS)}")
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_pattern", re.compile(self.value))
            except re.error as exc:
                raise ConfigError(f"matcher {self}: {self.value!r} is not a regular expression ({exc})") from exc

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``team=ops``, ``severity!=info``, ``alertname=~"Oms.*"``."""
        found = _SYNTAX.match(text)
        if found is None:
            raise ConfigError(f"matcher {text!r} is not name=value, name!=value, name=~regex or name!~regex")
        name, op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"')
        return cls(name, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self._pattern is not None:
            found = self._pattern.fullmatch(value) is not None
            return found if self.op == "=~" else not found
        return (value == self.value) if self.op == "=" else (value != self.value)

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matchers(texts: Iterable[str], where: str) -> tuple[Matcher, ...]:
    """Parse a list of matcher strings; ``where`` names the list in errors."""
    if isinstance(texts, str):
        raise ConfigError(f"{where}: matchers must be a list of strings such as [\"severity=critical\"]")
    try:
        return tuple(Matcher.parse(str(text)) for text in texts)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def all_match(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(matcher.matches(labels) for matcher in matchers)
