"""Model profiles and endpoints: what each model accepts and costs, and how to reach it.

    from soraflow.models import load_catalog
    catalog = load_catalog("models.yaml")          # built-in profiles with the user's laid over
    profile = catalog.profile("gateway-veo")       # lengths, sizes, prices, inputs, retirement
    endpoint = catalog.endpoint_of(profile)        # dialect, base URL, where its key comes from

Routing (routing.py) decides, from the environment, whether each endpoint is called for real
or served by the embedded simulator, and what identity it has in clip keys.
"""

from .catalog import ModelCatalog, builtin_catalog, load_catalog, parse_catalog, profile_table_row
from .endpoints import DIALECTS, FAL_JWKS_URL, SIZE_VOCABULARY, WEBHOOK_SIGNING, Dialect, Endpoint, Webhooks, is_loopback, named_sizes
from .profiles import Inputs, ModelProfile, SizeOffer, aspect_and_resolution, split_seconds
from .routing import SIMULATE_VARIABLE, SIMULATOR_IDENTITY, Route, Routing, route_endpoints, simulator_identity

__all__ = [
    "DIALECTS",
    "FAL_JWKS_URL",
    "SIMULATE_VARIABLE",
    "SIMULATOR_IDENTITY",
    "SIZE_VOCABULARY",
    "WEBHOOK_SIGNING",
    "Webhooks",
    "Dialect",
    "Endpoint",
    "Inputs",
    "ModelCatalog",
    "ModelProfile",
    "Route",
    "Routing",
    "aspect_and_resolution",
    "is_loopback",
    "named_sizes",
    "SizeOffer",
    "builtin_catalog",
    "load_catalog",
    "parse_catalog",
    "profile_table_row",
    "route_endpoints",
    "simulator_identity",
    "split_seconds",
]
