"""Mapping source class names or ids onto a training taxonomy (`drop` discards a class)."""

from __future__ import annotations

from dataclasses import dataclass

from shipdet.errors import ConfigError, DatasetFormatError

DROP = "drop"


@dataclass
class ClassMap:
    """`source name or id` -> target class name. Target ids follow `names` (default: order of appearance)."""

    mapping: dict[str, str]
    names: list[str]
    default: str | None = None  # target for sources not in mapping (None: unknown source is an error)

    @classmethod
    def parse(cls, spec: str | None, default: str | None = "ship", names: list[str] | None = None) -> ClassMap:
        """Parse `a=ship,b=ship,c=drop`; `*=ship` sets the default for everything unlisted."""
        mapping: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in (spec or "").split(","))):
            if "=" not in item:
                raise ConfigError(f"class map entry {item!r} is not `source=target`",
                                  "example: --class-map naval=ship,Merchant=ship,dock=drop")
            src, dst = (s.strip() for s in item.split("=", 1))
            if src == "*":
                default = dst
            else:
                mapping[src] = dst
        targets = list(names or [])
        for dst in [*mapping.values(), *([default] if default else [])]:
            if dst != DROP and dst not in targets:
                targets.append(dst)
        return cls(mapping, targets or ["ship"], default)

    @property
    def class_names(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    def target_id(self, source: str | int) -> int | None:
        """Target class id for a source class, None to drop it; raises for an unmapped class without default."""
        key = str(source)
        target = self.mapping.get(key, self.default)
        if target is None:
            raise DatasetFormatError(f"class {key!r} is not in the class map",
                                     f"map it, e.g. --class-map {key}=ship (or {key}=drop)")
        return None if target == DROP else self.names.index(target)
