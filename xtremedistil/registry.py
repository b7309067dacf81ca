"""Name -> implementation tables for the swappable parts: tasks, students, recipes.

Built-in entries are 'module:attribute' strings imported on first use, so registering a part
costs no import; `register` adds another (a class, function or such a string).
"""

import importlib


class Registry:
    def __init__(self, kind, entries):
        self.kind = kind
        self._entries = dict(entries)

    def register(self, name, entry):
        self._entries[name] = entry
        return entry

    def names(self):
        return sorted(self._entries)

    def get(self, name):
        if name not in self._entries:
            raise ValueError(f"Unknown {self.kind} {name!r}; registered: "
                             f"{', '.join(self.names())}.")
        entry = self._entries[name]
        if isinstance(entry, str):
            module, _, attribute = entry.partition(":")
            entry = self._entries[name] = getattr(importlib.import_module(module), attribute)
        return entry
