"""Checks shared by the Kubernetes and Calico converters: names, labels, CIDRs, ports, selectors.

Each check appends `(field path, message)` to a problem list instead of raising, so one document reports
all of its mistakes at once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from policy_dataplane.policy.model import IPNetwork, Labels
from policy_dataplane.policy.selectors import Selector, SelectorError, parse

Problems = list[tuple[str, str]]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


class Invalid(ValueError):
    """An object that fails validation; `problems` are (field path, message) pairs."""

    def __init__(self, problems: Problems):
        self.problems = problems
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in problems))


class Strict(BaseModel):
    """Boundary models: unknown fields are errors (as with `kubectl apply --validate=strict`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Metadata(BaseModel):
    """Object metadata: the fields we read are checked; the fields an API server sets (uid, resourceVersion..)
    are accepted, as `kubectl get -o yaml` output carries them; anything else is an unknown field."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generateName: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    creationTimestamp: Any = None
    deletionTimestamp: Any = None
    deletionGracePeriodSeconds: int | None = None
    selfLink: str | None = None
    ownerReferences: list[dict[str, Any]] | None = None
    finalizers: list[str] | None = None
    managedFields: list[dict[str, Any]] | None = None


class Document(Strict):
    """What every API object has; each kind adds its own `spec` (and maybe `status`)."""

    apiVersion: str
    kind: str
    metadata: Metadata


def validate_model(cls: type[BaseModel], doc: dict[str, Any]) -> Any:
    """The boundary model of a document, or Invalid with every schema problem."""
    try:
        return cls.model_validate(doc)
    except ValidationError as e:
        raise Invalid(pydantic_problems(e)) from None


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def pydantic_problems(error: ValidationError, prefix: str = "") -> Problems:
    problems: Problems = []
    for e in error.errors():
        path = field_path(tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p and p.endswith("]"))))
        full = f"{prefix}.{path}" if prefix and path else (prefix or path)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        problems.append((full, msg))
    return problems


def check_dns_label(value: str, path: str, problems: Problems) -> None:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        problems.append((path, f"{value!r} must be a DNS label: at most 63 lower-case letters, digits and '-'"))


def check_dns_subdomain(value: str, path: str, problems: Problems) -> None:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        problems.append(
            (path, f"{value!r} must be a DNS subdomain: lower-case letters, digits, '-' and '.', at most 253")
        )


@lru_cache(maxsize=65536)
def _label_key_problems(key: str) -> tuple[str, ...]:
    """Cached: the same label keys recur across thousands of pods."""
    out = []
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        out.append(f"label key {key!r}: prefix must be a DNS subdomain")
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        out.append(
            f"label key {key!r}: name must be 1-63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        )
    return tuple(out)


@lru_cache(maxsize=65536)
def _label_value_ok(value: str) -> bool:
    return len(value) <= 63 and _LABEL_VALUE.match(value) is not None


def check_label_key(key: str, path: str, problems: Problems) -> None:
    problems.extend((path, message) for message in _label_key_problems(key))


def check_label_value(value: str, path: str, problems: Problems) -> None:
    if not _label_value_ok(value):
        problems.append(
            (path, f"label value {value!r} must be at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric")
        )


def check_labels(labels: Mapping[str, str] | None, path: str, problems: Problems) -> Labels:
    for key, value in (labels or {}).items():
        check_label_key(key, f"{path}.{key}", problems)
        check_label_value(value, f"{path}.{key}", problems)
    return Labels(labels or {})


def check_port_name(name: str, path: str, problems: Problems) -> None:
    """IANA service name: 1-15 lower-case alphanumerics and '-', at least one letter, no '--'."""
    if (
        len(name) > 15
        or not _IANA_SVC_NAME.match(name)
        or "--" in name
        or not any(c.isalpha() for c in name)
    ):
        problems.append((path, f"port name {name!r} must be 1-15 lower-case letters, digits and '-', with a letter"))


def parse_cidr(text: str, path: str, problems: Problems) -> IPNetwork | None:
    """A CIDR (or a bare address as a host route). Host bits are cleared, as the API servers accept them."""
    try:
        if "/" not in text:
            return ipaddress.ip_network(text)
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        problems.append((path, f"{text!r} is not a valid CIDR"))
        return None


def parse_ip(text: str, path: str, problems: Problems) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        problems.append((path, f"{text!r} is not an IP address"))
        return None


def parse_selector(text: str, path: str, problems: Problems) -> Selector | None:
    try:
        return parse(text)
    except SelectorError as e:
        problems.append((path, str(e)))
        return None
