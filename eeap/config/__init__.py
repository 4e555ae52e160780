"""Config: the registries of components and their roles, config value types, components' signatures read
from their sources, and YAML run configs (composition, overrides, checks)."""
