"""The routing tree, inhibition rules and receivers, read from a TOML file.

Alertmanager's semantics (prometheus.io/docs/alerting/latest/configuration):

- an alert enters at the root route, which matches everything; it descends into the first
  child whose matchers all match, and from there recursively; a child with
  ``continue = true`` lets the search go on to its later siblings, so several routes can
  take one alert; when no child matches, the route itself takes it;
- a child inherits its parent's receiver, ``group_by`` and timings where it sets none;
- ``group_by`` names the labels that split a route's alerts into groups (``["..."]``:
  every label, so each alert is its own group; empty: one group per route);
- an inhibition rule mutes every alert matching its ``target_matchers`` while an alert
  matching its ``source_matchers`` fires with the same values of its ``equal`` labels.

The file format is in the README (Monitoring) with an example in ``examples/alerts.toml``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ai_trading.config import AlertsConfig
from ai_trading.errors import ConfigError
from ai_trading.monitoring.alerts import Alert
from ai_trading.monitoring.matchers import Matcher, all_match, parse_matchers
from ai_trading.monitoring.receivers import ReceiverSpec, parse_receiver

ALL_LABELS = "..."
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | float, where: str) -> float:
    """Seconds in ``text``: a number of seconds, or Prometheus style ``90s``, ``5m``, ``1h30m``, ``2d``."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        spelled = str(text).strip()
        parts = _DURATION.findall(spelled)
        if not spelled or "".join(n + u for n, u in parts) != spelled:
            raise ConfigError(f"{where}: {text!r} is not a duration such as 30s, 5m, 4h or 1h30m")
        seconds = sum(float(number) * _UNIT_S[unit] for number, unit in parts)
    if seconds < 0:
        raise ConfigError(f"{where}: a duration must be >= 0, got {text!r}")
    return seconds


@dataclass(frozen=True)
class Route:
    """One node of the routing tree, every inherited setting resolved.

    :param path: position in the tree (``root``, ``root.0``, ``root.0.1``): part of group keys
    :param group_by: label names; None groups by every label (``["..."]``)
    """

    path: str
    receiver: str
    matchers: tuple[Matcher, ...]
    group_by: tuple[str, ...] | None
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    continue_matching: bool
    routes: tuple[Route, ...]

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with ``labels`` (this one matching assumed)."""
        taken: list[Route] = []
        for child in self.routes:
            if all_match(child.matchers, labels):
                taken.extend(child.match(labels))
                if not child.continue_matching:
                    break
        return taken or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.group_by is None:
            return dict(labels)
        return {name: labels[name] for name in self.group_by if name in labels}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """Alertmanager's form: the route's matchers, then the group's labels."""
        route_part = "{" + ",".join(str(m) for m in self.matchers) + "}"
        group_part = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(self.group_labels(labels).items())) + "}"
        return f"{self.path}/{route_part}:{group_part}"


@dataclass(frozen=True)
class InhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...]

    def mutes(self, target: Alert, firing: Sequence[Alert]) -> bool:
        """Whether ``target`` is muted by one of the ``firing`` alerts (never by itself)."""
        if not all_match(self.target_matchers, target.labels):
            return False
        return any(
            source.fingerprint != target.fingerprint
            and all_match(self.source_matchers, source.labels)
            and all(source.labels.get(name, "") == target.labels.get(name, "") for name in self.equal)
            for source in firing
        )


@dataclass(frozen=True)
class RoutingConfig:
    route: Route
    receivers: Mapping[str, ReceiverSpec]
    inhibit_rules: tuple[InhibitRule, ...]


def load_routing(path: Path, config: AlertsConfig) -> RoutingConfig:
    """Read and check a routes file; every error names the file and the entry."""
    try:
        document = tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"alert routes file {path} does not exist (set [alerts] routes_file)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"alert routes file {path} is not valid TOML: {exc}") from exc
    return parse_routing(document, config, str(path))


def parse_routing(document: Mapping[str, Any], config: AlertsConfig, where: str) -> RoutingConfig:
    _known(document, {"route", "receivers", "inhibit_rules"}, where)
    receivers: dict[str, ReceiverSpec] = {}
    for index, table in enumerate(_tables(document.get("receivers", []), f"{where}: receivers")):
        spec = parse_receiver(table, f"{where}: receivers[{index}]")
        if spec.name in receivers:
            raise ConfigError(f"{where}: receiver {spec.name!r} is defined twice")
        receivers[spec.name] = spec
    root_table = document.get("route")
    if not isinstance(root_table, dict):
        raise ConfigError(f"{where}: needs a [route] table (the root route, with a receiver)")
    if root_table.get("matchers"):
        raise ConfigError(f"{where}: the root [route] matches every alert and takes no matchers")
    if "continue" in root_table:
        raise ConfigError(f"{where}: the root [route] takes no 'continue'")
    defaults = Route("root", "", (), (), config.group_wait_s, config.group_interval_s, config.repeat_interval_s, False, ())
    route = _route(root_table, defaults, "root", receivers, where)
    inhibit = tuple(
        InhibitRule(
            parse_matchers(t.get("source_matchers", []), f"{where}: inhibit_rules[{i}].source_matchers"),
            parse_matchers(t.get("target_matchers", []), f"{where}: inhibit_rules[{i}].target_matchers"),
            tuple(str(name) for name in t.get("equal", [])),
        )
        for i, t in enumerate(_tables(document.get("inhibit_rules", []), f"{where}: inhibit_rules"))
        if _known(t, {"source_matchers", "target_matchers", "equal"}, f"{where}: inhibit_rules[{i}]")
    )
    return RoutingConfig(route, receivers, inhibit)


def _route(table: Mapping[str, Any], parent: Route, path: str, receivers: Mapping[str, ReceiverSpec], where: str) -> Route:
    here = f"{where}: route {path}"
    _known(table, {"receiver", "matchers", "group_by", "group_wait", "group_interval", "repeat_interval", "continue", "routes"}, here)
    receiver = str(table.get("receiver", parent.receiver))
    if not receiver:
        raise ConfigError(f"{here}: needs a receiver")
    if receiver not in receivers:
        raise ConfigError(f"{here}: receiver {receiver!r} is not defined; defined: {', '.join(sorted(receivers)) or 'none'}")
    group_by: tuple[str, ...] | None = parent.group_by
    if "group_by" in table:
        names = [str(name) for name in table["group_by"]]
        if ALL_LABELS in names and names != [ALL_LABELS]:
            raise ConfigError(f"{here}: group_by ['...'] (every label) cannot be combined with label names")
        group_by = None if names == [ALL_LABELS] else tuple(names)
    node = Route(
        path=path,
        receiver=receiver,
        matchers=parse_matchers(table.get("matchers", []), f"{here}.matchers"),
        group_by=group_by,
        group_wait_s=parse_duration(table.get("group_wait", parent.group_wait_s), f"{here}.group_wait"),
        group_interval_s=parse_duration(table.get("group_interval", parent.group_interval_s), f"{here}.group_interval"),
        repeat_interval_s=parse_duration(table.get("repeat_interval", parent.repeat_interval_s), f"{here}.repeat_interval"),
        continue_matching=bool(table.get("continue", False)),
        routes=(),
    )
    if node.group_interval_s <= 0 or node.repeat_interval_s <= 0:
        raise ConfigError(f"{here}: group_interval and repeat_interval must be > 0")
    children = tuple(
        _route(child, node, f"{path}.{i}", receivers, where) for i, child in enumerate(_tables(table.get("routes", []), f"{here}.routes"))
    )
    return replace(node, routes=children)


def _tables(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(f"{where}: must be an array of tables ([[...]])")
    return value


def _known(table: Mapping[str, Any], allowed: set[str], where: str) -> bool:
    unknown = set(table) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(allowed))}")
    return True
