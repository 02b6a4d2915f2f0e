"""Where each endpoint's requests go: to the endpoint itself, or to the embedded simulator.

The rule, decided from the environment alone (no request is sent):
- with ``SORAFLOW_SIMULATE`` set, or with no credentials for any endpoint at all, every
  endpoint is served by the embedded simulator in its own dialect: a new machine renders
  every profile locally, and says so;
- otherwise each endpoint with credentials is called for real, and a plan that needs an
  endpoint without them is refused before anything is spent, naming the variable to set.
  Silently simulating one endpoint while paying another would make a film that is half
  fake, so it never happens on a guess.

A route's identity goes into clip keys: the endpoint's URL without userinfo or query, its
``identity`` when set, or ``soraflow-simulator`` for the embedded simulator (stable across
runs, whatever port it listens on; ``soraflow-simulator:google-genai`` for that dialect).
"""

from __future__ import annotations

import os
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict

from ..errors import EndpointNotConfiguredError
from .catalog import ModelCatalog
from .endpoints import Endpoint

SIMULATOR_IDENTITY = "soraflow-simulator"
SIMULATE_VARIABLE = "SORAFLOW_SIMULATE"


def simulator_identity(dialect: str) -> str:
    """The embedded simulator's identity in clip keys, one per dialect it serves (the same
    model name in two dialects is two different jobs)."""
    return SIMULATOR_IDENTITY if dialect == "openai-videos" else f"{SIMULATOR_IDENTITY}:{dialect}"


class Route(BaseModel):
    """How one endpoint is reached in this run. Plain data (no secret): a ClipSpec carries it."""

    model_config = ConfigDict(frozen=True)

    endpoint: Endpoint
    identity: str
    simulated: bool = False

    @property
    def name(self) -> str:
        return self.endpoint.name

    @property
    def dialect(self) -> str:
        return self.endpoint.dialect

    @property
    def waits_on_webhooks(self) -> bool:
        """Whether its clips learn they are done from webhook deliveries (confirmed by one status
        call, with a slow poll as the safety net) rather than by polling. The embedded simulator
        has no receiver to deliver to, so a simulated route is polled."""
        return self.endpoint.webhooks is not None and not self.simulated

    @property
    def shown(self) -> str:
        """The endpoint named for people: 'gateway (http://localhost:4000/v1)', never a credential."""
        return f"{self.name} ({'the embedded simulator' if self.simulated else self.identity})"


class Routing(BaseModel):
    model_config = ConfigDict(frozen=True)

    routes: dict[str, Route]
    # Endpoints that cannot be called from here: name → the variable(s) that would configure it.
    unconfigured: dict[str, str] = {}
    simulated_because: Literal["forced", "no-credentials"] | None = None

    def route(self, endpoint: str) -> Route:
        if endpoint in self.routes:
            return self.routes[endpoint]
        raise self.refusal({endpoint: []})

    def refusal(self, needed: Mapping[str, list[str]]) -> EndpointNotConfiguredError:
        """One error for every unconfigured endpoint a plan needs, naming who needs it."""
        lines = []
        for name, users in needed.items():
            used = f" (needed by {', '.join(users)})" if users else ""
            lines.append(f"endpoint {name!r} has no credentials here: set {self.unconfigured.get(name, 'its credentials')}{used}")
        configured = ", ".join(sorted(self.routes)) or "none"
        return EndpointNotConfiguredError(
            "; ".join(lines)
            + f". Nothing was created. Configured endpoints: {configured}; set {SIMULATE_VARIABLE}=1 (or --simulate) "
            "to render every endpoint on the embedded simulator instead."
        )


def simulate_forced(env: Mapping[str, str]) -> bool:
    return env.get(SIMULATE_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


def route_endpoints(catalog: ModelCatalog, env: Mapping[str, str] | None = None, *, simulate: bool = False) -> Routing:
    """Route every endpoint of ``catalog`` as the environment allows (see the module doc)."""
    env = os.environ if env is None else env
    configured = {name: e for name, e in catalog.endpoints.items() if e.has_credentials(env)}
    if simulate or simulate_forced(env) or not configured:
        return Routing(
            routes={
                name: Route(endpoint=e, identity=simulator_identity(e.dialect), simulated=True) for name, e in catalog.endpoints.items()
            },
            simulated_because="forced" if simulate or simulate_forced(env) else "no-credentials",
        )
    return Routing(
        routes={name: Route(endpoint=e, identity=e.identity_in(env)) for name, e in configured.items()},
        unconfigured={name: e.what_to_set() for name, e in catalog.endpoints.items() if name not in configured},
    )


__all__ = ["SIMULATE_VARIABLE", "SIMULATOR_IDENTITY", "Route", "Routing", "route_endpoints", "simulate_forced", "simulator_identity"]
