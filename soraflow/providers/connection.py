"""From a route to what a provider needs to open a client: a URL and a credential.

A simulated route starts (or reuses) the process's embedded simulator and takes its URL for
the route's dialect and its key. A real route takes the endpoint's URL and exactly the credential
its entry names (``credentials.resolve_credential``: its variable, its Prefect Secret block read
through ``read_secret``, Entra ID, Application Default Credentials). The key lives only here and
in the SDK client: a Connection prints without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from ..models import ModelProfile, Route
from ..redaction import redact_url
from .credentials import SecretReader, resolve_credential


@dataclass(frozen=True)
class Connection:
    route: Route
    base_url: str | None
    api_key: str | None = field(default=None, repr=False)
    project: str | None = None  # google-genai (Vertex AI)
    location: str | None = None
    # fal: its platform API (history, prices, models), a CA to trust, and the profiles at this
    # endpoint (their arguments tables say how each model takes a create).
    platform_url: str | None = None
    ca_file: str | None = None
    profiles: tuple[ModelProfile, ...] = ()
    # What the endpoint sends: "key" (api_key), "entra-id", "adc" or "none"
    credential: str = "key"

    @property
    def endpoint(self):
        return self.route.endpoint

    @property
    def where(self) -> str:
        """The endpoint named for people, never with a credential: 'gateway (http://localhost:4000/v1)'."""
        if self.route.simulated or not self.base_url:
            return self.route.shown
        return f"{self.route.name} ({redact_url(self.base_url)})"


def connect(
    route: Route,
    env: Mapping[str, str],
    *,
    read_secret: SecretReader | None = None,
    simulated_models: Iterable | None = None,
    simulator_latency: float = 2.0,
    simulator_cache_dir: Path | str | None = None,
    profiles: Iterable[ModelProfile] = (),
) -> Connection:
    """How to reach ``route`` now, with the credential its entry names (EndpointNotConfiguredError
    when there is none); ``read_secret`` reads a Prefect Secret block's value. Every command that
    calls an endpoint comes through here, so all refuse the same setups. ``profiles``: the
    catalog's profiles (those at this endpoint are kept)."""
    mine = tuple(p for p in profiles if p.endpoint == route.name)
    if route.simulated:
        from ..simulator import embedded_simulator

        sim = embedded_simulator(simulated_models or (), latency=simulator_latency, cache_dir=simulator_cache_dir)
        base = sim.base_url_for(route.dialect)
        fal = route.dialect == "fal"
        return Connection(route=route, base_url=base, api_key=sim.api_key, platform_url=f"{base}/v1" if fal else None,
                          ca_file=str(sim.fal_ca_file) if fal else None, profiles=mine)
    e = route.endpoint
    credential = resolve_credential(route, env, read_secret)
    return Connection(
        route=route,
        base_url=e.url(env),
        api_key=credential.key,
        project=e.vertex_project(env),
        location=e.vertex_location(env),
        platform_url=e.platform(env) if e.dialect == "fal" else None,
        ca_file=e.ca_file,
        profiles=mine,
        credential=credential.kind,
    )


__all__ = ["Connection", "connect"]
