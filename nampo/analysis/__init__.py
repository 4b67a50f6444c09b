"""Reading a store: per-pixel change dating, events, activity at the facilities, and
before/after change between two dates (docs/change.md)."""
