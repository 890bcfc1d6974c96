"""A YAML key written twice in one mapping: an error, never "the last one wins".

PyYAML keeps the last of two equal keys without a word, so a region written twice could
send one clinic's data to another region's bucket. The document is composed (parsed to
nodes, no Python objects) and walked once; the first key seen twice is named by its path,
in the same form as every other config error ("regions.uk", "clinics[0].numbers").
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE = "<<"  # YAML's merge key may legitimately repeat


def duplicate_key(text: str) -> str | None:
    """The path of the first key written twice in a mapping of `text`, else None. The text
    must already have loaded (yaml.safe_load) without error."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    return _walk(root, "", set()) if root is not None else None


def _walk(node: Node, path: str, visited: set[int]) -> str | None:
    if id(node) in visited:  # an alias: its node was walked where its anchor is
        return None
    visited.add(id(node))
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            where = _join(path, key) if key is not None else path
            if key is not None and key != MERGE:
                if key in seen:
                    return where
                seen.add(key)
            found = _walk(value, where, visited)
            if found:
                return found
    elif isinstance(node, SequenceNode):
        for i, item in enumerate(node.value):
            found = _walk(item, f"{path}[{i}]", visited)
            if found:
                return found
    return None


def _join(path: str, key: str) -> str:
    shown = key if re.fullmatch(r"[\w-]+", key) else repr(key)
    return f"{path}.{shown}" if path else shown
