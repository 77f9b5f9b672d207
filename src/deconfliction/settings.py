"""Every setting in one table: it feeds the CLI flags, the DECONFLICT_* variables and the docs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from deconfliction.errors import InvalidInput
from deconfliction.model import DEFAULT_BUFFERS_M, ActivityKind, CheckKind

ENV_PREFIX = "DECONFLICT_"


def _meta(help_: str) -> dict[str, str]:
    return {"help": help_}


@dataclass(frozen=True)
class Settings:
    """Deployment settings; ``Settings.from_env()`` reads ``DECONFLICT_<NAME>`` variables."""

    buffer_fires_m: float = field(default=DEFAULT_BUFFERS_M[CheckKind.FIRES], metadata=_meta("Buffer of a fires check, metres."))
    buffer_air_m: float = field(default=DEFAULT_BUFFERS_M[CheckKind.AIR], metadata=_meta("Buffer of an air check, metres."))
    buffer_ground_m: float = field(
        default=DEFAULT_BUFFERS_M[CheckKind.GROUND], metadata=_meta("Buffer of a ground check, metres.")
    )
    buffer_other_m: float = field(
        default=DEFAULT_BUFFERS_M[CheckKind.OTHER], metadata=_meta("Buffer of any other check, metres.")
    )
    stale_after_s: float = field(default=1800.0, metadata=_meta("Default life of a unit's report for new parties, seconds."))
    clock_skew_s: float = field(
        default=300.0, metadata=_meta("How far a report's time may lie ahead of the server clock, seconds.")
    )
    coarse_resolution: int = field(default=7, metadata=_meta("H3 resolution shown for coarse assets (7: cells of about 5 km²)."))
    max_batch: int = field(default=10_000, metadata=_meta("Most reports in one batch."))
    max_area_km2: float = field(
        default=500_000.0,
        metadata=_meta(
            "Largest area a zone, AOR, activity or check may cover, km² (422 beyond): more than any theatre, "
            "less than a ring read the long way round the globe."
        ),
    )
    deadline_fires_s: float = field(default=600.0, metadata=_meta("Time affected parties have to answer fires, seconds."))
    deadline_air_s: float = field(default=1800.0, metadata=_meta("Time affected parties have to answer air, seconds."))
    deadline_patrol_s: float = field(default=3600.0, metadata=_meta("Time affected parties have to answer a patrol, seconds."))
    deadline_movement_s: float = field(
        default=3600.0, metadata=_meta("Time affected parties have to answer a movement, seconds.")
    )
    head_interval_s: float = field(
        default=2.0, metadata=_meta("While there are writes, a signed tree head is published at least this often, seconds.")
    )
    check_rate_per_min: float = field(
        default=60.0,
        metadata=_meta(
            "Checks and proposals a party may make per minute once its burst is spent (429 beyond); 0: no budget (benchmarks)."
        ),
    )
    check_burst: int = field(default=60, metadata=_meta("Checks and proposals a party may make at once."))
    max_body_bytes: int = field(
        default=8 * 2**20,
        metadata=_meta("Largest request body the server reads, bytes (413 beyond); a batch of 10,000 reports is about 2 MB."),
    )
    bad_tokens_per_min: float = field(
        default=10.0,
        metadata=_meta(
            "Unknown tokens one client address may present per minute once its burst is spent; beyond, every token from "
            "it is refused with 429 until the budget refills (a guessed token cannot get through); 0: no limit."
        ),
    )
    bad_token_burst: int = field(default=20, metadata=_meta("Unknown tokens one client address may present at once."))
    probe_alarm_m: float = field(
        default=2000.0,
        metadata=_meta("An owner is told when one party's answers place its hidden asset within a circle this wide, metres."),
    )
    probe_checks: int = field(
        default=20,
        metadata=_meta("An owner is told when one party made this many distinct checks near its hidden asset in probe_window_s."),
    )
    probe_near_m: float = field(
        default=1000.0, metadata=_meta("A check whose buffered area comes this close to a hidden asset is near it, metres.")
    )
    probe_window_s: float = field(default=21_600.0, metadata=_meta("How long checks near a hidden asset are counted, seconds."))
    tick_s: float = field(
        default=1.0, metadata=_meta("How often the server looks for deadlines passed, windows ended and AORs lapsed, seconds.")
    )
    tak_refresh_s: float = field(
        default=5.0,
        metadata=_meta(
            "TAK devices are sent the whole shared picture again this often (changes at once); what they were sent goes "
            "stale after three times this, seconds."
        ),
    )
    tak_max_message_bytes: int = field(default=65_536, metadata=_meta("Largest CoT message a TAK listener takes, bytes."))
    tak_unknown_uids: str = field(
        default="register",
        metadata=_meta("A TAK uid the party has no asset for: register (a unit, with the party's default disclosure) or refuse."),
    )
    tak_unknown_ce_m: float = field(
        default=0.0,
        metadata=_meta(
            "Uncertainty given to a TAK position whose ce is 9999999 (not known), metres; 0: such positions are refused."
        ),
    )
    tak_tls_cert: str = field(default="", metadata=_meta("PEM certificate (chain) of the TAK TLS listener."))
    tak_tls_key: str = field(default="", metadata=_meta("PEM private key of the TAK TLS listener."))
    tak_tls_ca: str = field(
        default="",
        metadata=_meta("PEM CA that signs devices' client certificates; a certificate's organisation (O) names its party."),
    )
    snapshot_every_s: float = field(
        default=3600.0,
        metadata=_meta(
            "While it serves, a node writes its snapshot this often, when the log has grown, in a second process so that "
            "nothing waits (0: only as it stops), seconds."
        ),
    )
    console_tiles_url: str = field(
        default="",
        metadata=_meta(
            "A tile server for the console's map, as a Leaflet URL template (https://tiles.example.org/{z}/{x}/{y}.png); "
            "empty: no tiles, nothing loaded from another host."
        ),
    )

    def buffer_m(self, kind: CheckKind) -> float:
        return float(getattr(self, f"buffer_{kind.value}_m"))

    def deadline_s(self, kind: ActivityKind) -> float:
        return float(getattr(self, f"deadline_{kind.value}_s"))

    def with_buffers(self, buffers: Mapping[str, Any]) -> Settings:
        """A copy with some buffers replaced, e.g. from a scenario's ``buffers_m``."""
        changes: dict[str, Any] = {}
        for kind, value in buffers.items():
            name = f"buffer_{kind}_m"
            if name not in {f.name for f in fields(self)}:
                raise InvalidInput(f"{kind!r} is not a check kind", field=f"buffers_m.{kind}")
            changes[name] = float(value)
        return Settings(**{**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``DECONFLICT_*`` variables, then explicit overrides (CLI flags)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        defaults = cls()
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                convert = type(getattr(defaults, f.name))
                try:
                    values[f.name] = convert(raw)
                except ValueError as exc:
                    raise InvalidInput(f"{raw!r} is not a {convert.__name__}", field=ENV_PREFIX + f.name.upper()) from exc
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def settings_table() -> list[tuple[str, Any, str]]:
    """(name, default, help) for every setting, in order: the docs are generated from this."""
    return [(f.name, f.default, f.metadata["help"]) for f in fields(Settings)]
