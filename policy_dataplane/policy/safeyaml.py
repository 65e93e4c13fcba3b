"""Reading what users hand the lab: regular files of bounded size, UTF-8 text, YAML with bounded expansion.

A YAML alias is a pointer: ten lines can describe a billion nodes ("billion laughs"), which the loader
builds lazily but every later walk (validation, a JSON dump) expands. `BoundedLoader` composes each
document's node graph first (in C when libyaml is there) and walks it once, memoised per node, before
anything is constructed: it refuses a document whose expanded size exceeds `max_nodes`, nesting deeper than
`MAX_DEPTH`, recursive aliases, and a mapping that repeats a key (YAML says keys are unique; PyYAML keeps
the last one silently, so `name: a` ... `name: b` would bring up `b`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # 32 MiB: the 1500-service bank is about 1 MiB
DEFAULT_MAX_NODES = 5_000_000  # YAML nodes after alias expansion: the bank has about 200,000
MAX_DEPTH = 100  # nesting; a real policy is about 10 deep

_BASE: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster


class InputError(ValueError):
    """A file or text the lab refuses to read; the message names the file and says why."""


def read_text(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The UTF-8 text of a regular file of at most `max_bytes`. Devices, FIFOs, directories (`/dev/zero`,
    `/dev/stdin`) are refused before a byte is read, and nothing bigger than the limit is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file: only regular files are read")
        if info.st_size > max_bytes:
            raise InputError(f"{path}: {info.st_size} bytes is more than the limit of {max_bytes} (fileBytes)")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise InputError(f"{path}: more than the limit of {max_bytes} bytes (fileBytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (a binary file?): byte {exc.start} cannot be decoded") from None


class BoundedLoader(_BASE):  # type: ignore[misc, valid-type]
    """A safe loader that checks each composed document (see the module doc) before constructing it."""

    max_nodes = DEFAULT_MAX_NODES

    def construct_document(self, node: Node) -> Any:
        check_node_graph(node, self.max_nodes)
        return super().construct_document(node)


def check_node_graph(root: Node, max_nodes: int) -> int:
    """The document's size with every alias expanded; YAMLError when it is too big, too deep, recursive or
    has a duplicate key. Documents without aliases (nearly all) take one quick pass; with aliases each node
    object is sized once however many aliases point at it, so a billion laughs costs microseconds."""
    count, shared = _quick_pass(root, max_nodes)
    return _expanded_size(root, max_nodes) if shared else count


def _quick_pass(root: Node, max_nodes: int) -> tuple[int, bool]:
    """(distinct nodes, whether any node is reached twice); checks depth and duplicate keys on the way."""
    seen: set[int] = set()
    stack: list[tuple[Node, int]] = [(root, 1)]
    shared = False
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            shared = True
            continue
        seen.add(id(node))
        if len(seen) > max_nodes:
            raise _problem(node, f"has more than {max_nodes} YAML nodes (yamlNodes)")
        if depth > MAX_DEPTH:
            raise _problem(node, f"nested deeper than {MAX_DEPTH} levels")
        value = node.value
        if type(value) is list:  # a sequence or a mapping (a scalar's value is its text)
            if isinstance(node, MappingNode):
                _check_unique_keys(node)
                stack.extend((part, depth + 1) for pair in value for part in pair)
            else:
                stack.extend((child, depth + 1) for child in value)
    return len(seen), shared


def _expanded_size(root: Node, max_nodes: int) -> int:
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            if size[key] > max_nodes:
                raise _problem(node, f"expands to more than {max_nodes} YAML nodes (aliases included; yamlNodes)")
            continue
        if key in size:
            continue
        if key in on_path:
            raise _problem(node, "a recursive alias (a node that contains itself)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in size)
    return size[id(root)]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_unique_keys(node: MappingNode) -> None:
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            if (key.tag, key.value) in seen:
                raise _problem(key, f"duplicate key {key.value!r} in a mapping")
            seen.add((key.tag, key.value))


def _problem(node: Node, message: str) -> yaml.YAMLError:
    mark = node.start_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return yaml.YAMLError(f"{message}{where}")


def load_all(text: str, max_nodes: int = DEFAULT_MAX_NODES) -> list[Any]:
    """Every document of a YAML text, bounded as above; YAMLError (or InputError for a recursion the
    checks did not foresee) otherwise."""
    loader_class = type("Loader", (BoundedLoader,), {"max_nodes": max_nodes})
    loader = loader_class(text)
    try:
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
        return docs
    except RecursionError:
        raise yaml.YAMLError("nested too deeply to read") from None
    finally:
        loader.dispose()


__all__ = ["InputError", "read_text", "load_all", "BoundedLoader", "check_node_graph", "DEFAULT_MAX_BYTES",
           "DEFAULT_MAX_NODES"]
