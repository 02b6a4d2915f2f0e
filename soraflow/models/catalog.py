"""The model catalog: every model profile and endpoint that resolves, from the built-in file
and the user's (``SORAFLOW_MODELS``, or the same text in a Prefect Variable).

The user's file adds or overrides; an entry with the name of a built-in one is laid over it
field by field, and ``like: sora-2`` starts a new profile from another one. A profile's
``model`` (what the endpoint calls it) defaults to the profile's own name, also when it
inherits, so ``house-sora: {like: sora-2, endpoint: azure}`` asks Azure for the deployment
``house-sora`` with everything else of sora-2.

The file's shape::

    endpoints:
      gateway: {dialect: openai-videos, base_url: http://localhost:4000/v1, key_env: GATEWAY_KEY}
    models:
      gateway-veo:
        endpoint: gateway
        seconds: [4, 6, 8]
        sizes: {1280x720: 0.40, 1920x1080: {usd_per_second: 0.40, seconds: [8]}}   # USD per second

Every problem is reported at once with its field path (``models.gateway-veo.seconds[1]``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError

from ..documents import DocumentError, check_shape, parse_document, read_bounded
from ..errors import CatalogError, ModelsFileError, Problem, problems_from_validation
from .endpoints import SIZE_VOCABULARY, Endpoint, named_sizes
from .profiles import ModelProfile, SizeOffer, aspect_and_resolution

BUILTIN_SOURCE = "soraflow/models/builtin.yaml"
TOP_KEYS = ("endpoints", "models")
# Fields a profile does not inherit through ``like``: who it is, and what the endpoint calls it.
NOT_INHERITED = ("name", "model", "like")


class ModelCatalog(BaseModel):
    """Profiles by name and endpoints by name; every profile's endpoint exists."""

    model_config = ConfigDict(frozen=True)

    endpoints: dict[str, Endpoint]
    profiles: dict[str, ModelProfile]
    sources: tuple[str, ...] = ()

    def profile_names(self) -> list[str]:
        return sorted(self.profiles)

    def profile(self, name: str) -> ModelProfile:
        try:
            return self.profiles[name]
        except KeyError:
            raise CatalogError(f"unknown model profile {name!r}; known profiles: {', '.join(self.profile_names())}") from None

    def endpoint_of(self, profile: ModelProfile | str) -> Endpoint:
        profile = self.profile(profile) if isinstance(profile, str) else profile
        return self.endpoints[profile.endpoint]

    def profiles_at(self, endpoint: str) -> list[ModelProfile]:
        return [p for _, p in sorted(self.profiles.items()) if p.endpoint == endpoint]

    def with_key_secrets(self, secrets: Mapping[str, str]) -> "ModelCatalog":
        """The same catalog with these endpoints' keys in the named Prefect Secret blocks (a run
        form names them: names only, the tasks that call the endpoint read the keys)."""
        if unknown := sorted(set(secrets) - set(self.endpoints)):
            raise CatalogError(
                f"no endpoint named {', '.join(map(repr, unknown))} for a key's Secret block; endpoints: {', '.join(sorted(self.endpoints))}"
            )
        endpoints = {name: e.model_copy(update={"key_secret": secrets[name]}) if name in secrets else e for name, e in self.endpoints.items()}
        return self.model_copy(update={"endpoints": endpoints})


# --- reading ----------------------------------------------------------------------------------


def _read_yaml(text: str, source: str) -> Any:
    """Parsed within the limits every user document gets (soraflow.documents)."""
    try:
        return parse_document(text)
    except DocumentError as err:
        raise ModelsFileError([err.problem], source) from None


@lru_cache(maxsize=1)
def builtin_catalog() -> ModelCatalog:
    """The profiles and endpoints soraflow ships (sora-2, sora-2-pro, the Veo 3.1 family)."""
    text = resources.files("soraflow.models").joinpath("builtin.yaml").read_text(encoding="utf-8")
    return parse_catalog(_read_yaml(text, BUILTIN_SOURCE), source=BUILTIN_SOURCE, base=None)


def load_catalog(path: str | Path | None = None, *, text: str | None = None, data: Any = None, source: str | None = None) -> ModelCatalog:
    """The built-in catalog with a user file (``path``), text or parsed data laid over it."""
    if path is not None:
        p = Path(path).expanduser()
        source = source or str(p)
        try:
            text = read_bounded(p).decode("utf-8")
        except DocumentError as err:
            raise ModelsFileError([Problem("", f"{err.problem} (SORAFLOW_MODELS)")], source) from None
        except UnicodeDecodeError as err:
            raise ModelsFileError([Problem("", f"the file is not UTF-8 text (at byte {err.start}); save it as UTF-8")], source) from None
    if text is not None:
        data = _read_yaml(text, source or "(text)")
    elif data is not None:
        try:
            check_shape(data)  # a Variable's JSON gets the limits a file gets
        except DocumentError as err:
            raise ModelsFileError([err.problem], source) from None
    if data is None:
        return builtin_catalog()
    return parse_catalog(data, source=source or "(inline)", base=builtin_catalog())


# --- validating ---------------------------------------------------------------------------------


def parse_catalog(data: Any, *, source: str, base: ModelCatalog | None) -> ModelCatalog:
    """Validate a catalog mapping over ``base``; raise ModelsFileError naming every bad field."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        raise ModelsFileError([Problem("", f"the top level must be a mapping with {' and/or '.join(TOP_KEYS)}, not {type(data).__name__}")], source)
    for key in data:
        if key not in TOP_KEYS:
            problems.append(Problem(str(key), f"unknown key; allowed keys: {', '.join(TOP_KEYS)}"))
    endpoints = dict(base.endpoints) if base else {}
    for name, entry in _section(data, "endpoints", problems):
        fields = {**(base.endpoints[name].model_dump(exclude_unset=True) if base and name in base.endpoints else {}), **entry, "name": name}
        try:
            endpoints[name] = Endpoint.model_validate(fields)
        except ValidationError as err:
            problems += problems_from_validation(err, Endpoint, prefix=f"endpoints.{name}", hidden=frozenset({"name"}))

    raw_profiles = {name: _raw(p) for name, p in (base.profiles.items() if base else ())}
    user_entries = dict(_section(data, "models", problems))
    profiles = dict(base.profiles) if base else {}
    for name in user_entries:
        where = f"models.{name}"
        merged = _merged(name, user_entries, raw_profiles, problems, where, seen=())
        if merged is None:
            continue
        raw_profiles[name] = merged
        profile = _profile(name, merged, where, problems)
        if profile is None:
            continue
        if profile.endpoint not in endpoints:
            problems.append(Problem(f"{where}.endpoint", f"{profile.endpoint!r} is not a defined endpoint; known endpoints: {', '.join(sorted(endpoints))}"))
            continue
        problems += _profile_rules(profile, where, endpoints[profile.endpoint])
        profiles[name] = profile
    # An endpoint redefined under a built-in profile must still exist for it.
    for name, profile in profiles.items():
        if profile.endpoint not in endpoints:
            problems.append(Problem(f"models.{name}.endpoint", f"{profile.endpoint!r} is not a defined endpoint"))
    if problems:
        raise ModelsFileError(list(dict.fromkeys(problems)), source)  # a parent's problem once, not per child
    sources = (*(base.sources if base else ()), source)
    return ModelCatalog(endpoints=endpoints, profiles=profiles, sources=sources)


def _section(data: dict, key: str, problems: list[Problem]) -> list[tuple[str, dict]]:
    section = data.get(key)
    if section is None:
        return []
    if not isinstance(section, dict):
        problems.append(Problem(key, f"must be a mapping of name to settings, not {type(section).__name__}"))
        return []
    out = []
    for name, entry in section.items():
        if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
            problems.append(Problem(f"{key}.{name}", "a name is one word of letters, digits, '-', '_' or '.'"))
        elif not isinstance(entry, dict):
            problems.append(Problem(f"{key}.{name}", f"must be a mapping of settings, not {type(entry).__name__}"))
        else:
            out.append((name, entry))
    return out


def _raw(profile: ModelProfile) -> dict:
    """A validated profile as file-shaped data, so ``like`` and overrides can merge over it."""
    raw = profile.model_dump(exclude_none=True, exclude_defaults=False)
    raw["sizes"] = {o["size"]: {k: v for k, v in o.items() if k != "size"} for o in raw["sizes"]}
    return raw


def _merged(name: str, entries: dict[str, dict], known: dict[str, dict], problems: list[Problem], where: str, seen: tuple[str, ...]) -> dict | None:
    """The entry laid over what it inherits: ``like`` (resolved first), else the built-in of that name."""
    entry = entries[name]
    parent_name = entry.get("like")
    if parent_name is None:
        parent = known.get(name) if name not in seen else None  # a built-in of the same name
        return {**(parent or {}), **entry} if parent else dict(entry)
    if not isinstance(parent_name, str):
        problems.append(Problem(f"{where}.like", f"{parent_name!r} is not a profile name"))
        return None
    if parent_name in seen or parent_name == name and parent_name not in known:
        problems.append(Problem(f"{where}.like", f"{parent_name!r} inherits from itself ({' → '.join((*seen, name, parent_name))})"))
        return None
    if parent_name in entries and parent_name != name:
        parent = _merged(parent_name, entries, known, problems, f"models.{parent_name}", (*seen, name))
    else:
        parent = known.get(parent_name)
    if parent is None:
        if parent_name not in entries:
            names = sorted(set(known) | set(entries))
            problems.append(Problem(f"{where}.like", f"{parent_name!r} is not a known profile; known profiles: {', '.join(names)}"))
        return None
    inherited = {k: v for k, v in parent.items() if k not in NOT_INHERITED}
    return {**inherited, **{k: v for k, v in entry.items() if k != "like"}}


def _profile(name: str, merged: dict, where: str, problems: list[Problem]) -> ModelProfile | None:
    fields = {k: v for k, v in merged.items() if k != "like"}
    fields["name"] = name
    fields.setdefault("model", name)
    sizes = fields.get("sizes")
    size_keys: list[str] = []
    if isinstance(sizes, dict):
        offers = []
        for size, value in sizes.items():
            size_keys.append(str(size))
            offer = _offer(str(size), value, f"{where}.sizes.{size}", problems)
            if offer is None:
                return None
            offers.append(offer)
        fields["sizes"] = offers
    elif sizes is not None:
        problems.append(Problem(f"{where}.sizes", "must be a mapping of size (WIDTHxHEIGHT) to USD per generated second, e.g. {1280x720: 0.40}"))
        return None
    try:
        return ModelProfile.model_validate(fields)
    except ValidationError as err:
        for p in problems_from_validation(err, ModelProfile, hidden=frozenset({"name"})):
            path = p.path
            if path.startswith("sizes[") and size_keys:  # back to the key the user wrote
                index = int(path[6 : path.index("]")])
                path = f"sizes.{size_keys[index]}{path[path.index(']') + 1:]}"
            problems.append(Problem(f"{where}.{path}" if path else where, p.message))
        return None


_OFFER_KEYS = tuple(k for k in SizeOffer.model_fields if k != "size")


def _offer(size: str, value: Any, where: str, problems: list[Problem]) -> dict | None:
    if isinstance(value, dict):
        unknown = [k for k in value if k not in _OFFER_KEYS]
        if unknown:
            problems.append(Problem(f"{where}.{unknown[0]}", f"unknown key; allowed keys: {', '.join(_OFFER_KEYS)}"))
            return None
        return {"size": size, **value}
    if isinstance(value, bool) or not _is_number(value):
        problems.append(Problem(where, f"{value!r} is not a price: give USD per generated second (e.g. 0.40) or {{usd_per_second: 0.40, seconds: [8]}}"))
        return None
    return {"size": size, "usd_per_second": value}


def _is_number(value: Any) -> bool:
    try:
        return Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


def _profile_rules(profile: ModelProfile, where: str, endpoint: Endpoint) -> list[Problem]:
    """Rules across fields, worded for the file."""
    problems = []
    vocabulary = SIZE_VOCABULARY.get(endpoint.dialect)
    if vocabulary is not None:
        aspects, resolutions = vocabulary
        for offer in profile.sizes:
            aspect, resolution = aspect_and_resolution(offer.size)
            if aspect not in aspects or resolution not in resolutions:
                problems.append(Problem(
                    f"{where}.sizes.{offer.size}",
                    f"{endpoint.dialect} names sizes by aspect ratio ({', '.join(aspects)}) and resolution "
                    f"({', '.join(resolutions)}); {offer.size} is {aspect} at {resolution}. Allowed sizes: "
                    + ", ".join(named_sizes(endpoint.dialect)),
                ))
    problems += _arguments_rules(profile, where, endpoint)
    for i, s in enumerate(profile.seconds):
        if s in profile.seconds[:i]:
            problems.append(Problem(f"{where}.seconds[{i}]", f"{s} is listed twice"))
    for offer in profile.sizes:
        if offer.seconds:
            outside = [s for s in offer.seconds if s not in profile.all_seconds()]
            if outside:
                problems.append(Problem(
                    f"{where}.sizes.{offer.size}.seconds",
                    f"{', '.join(map(str, outside))} is not one of the profile's clip lengths ({', '.join(map(str, profile.all_seconds()))})",
                ))
    return problems


def _arguments_rules(profile: ModelProfile, where: str, endpoint: Endpoint) -> list[Problem]:
    """A fal profile's ``arguments:`` table against what the profile offers: every length, size
    and input it offers must be one the endpoint takes, as the table writes it."""
    table = profile.arguments
    if endpoint.dialect != "fal":
        return [Problem(f"{where}.arguments", f"an arguments table is for the fal dialect; endpoint {endpoint.name!r} speaks {endpoint.dialect}")] if table else []
    if table is None:
        return [Problem(f"{where}.arguments", "is required for the fal dialect: map each storyboard field to the endpoint's "
                        f"argument, e.g. {{seconds: {{name: duration, type: string}}, aspect_ratio: {{name: aspect_ratio}}}}")]
    out: list[Problem] = []
    at = f"{where}.arguments"
    if table.seconds is not None:
        for i, seconds in enumerate(profile.all_seconds()):
            if why := table.problems("seconds", seconds):
                index = profile.seconds.index(seconds) if seconds in profile.seconds else None
                path = f"{where}.seconds[{index}]" if index is not None else f"{where}.beyond_spec_seconds"
                out.append(Problem(path, f"{seconds} s is a length the endpoint does not take: {why}"))
    for offer in profile.sizes:
        aspect, resolution = aspect_and_resolution(offer.size)
        for field, value in (("aspect_ratio", aspect), ("resolution", resolution)):
            if getattr(table, field) is not None and (why := table.problems(field, value)):
                out.append(Problem(f"{where}.sizes.{offer.size}", f"a size the endpoint does not make: {why}"))
    if profile.inputs.first_frame != (table.first_frame is not None):
        out.append(Problem(f"{at}.first_frame", "must name the endpoint's image argument (image_url, start_image_url ...) exactly when "
                           f"inputs.first_frame is true (it is {str(profile.inputs.first_frame).lower()})"))
    if profile.audio == "on-request" and table.audio is None:
        out.append(Problem(f"{at}.audio", "is required with audio: on-request: name the endpoint's switch (generate_audio), so a "
                           "silent shot is asked and priced silent"))
    for name in ("remix", "extension", "last_frame"):
        if getattr(profile.inputs, name):
            out.append(Problem(f"{where}.inputs.{name}", "the fal dialect makes clips from a prompt and a first frame only"))
    if profile.inputs.reference_images:
        out.append(Problem(f"{where}.inputs.reference_images", "the fal dialect makes clips from a prompt and a first frame only"))
    names = [a.name for a in table.mapped().values()]
    for field, argument in table.mapped().items():
        if names.count(argument.name) > 1:
            out.append(Problem(f"{at}.{field}.name", f"{argument.name!r} is named by more than one field"))
        kind = table.type_of(field)
        for value in argument.values:
            if not isinstance(value, {"string": str, "integer": int, "boolean": bool}[kind]) or (kind == "integer" and isinstance(value, bool)):
                out.append(Problem(f"{at}.{field}.values", f"{value!r} is not a {kind}, the type this argument is sent as"))
                break
        if argument.suffix and kind != "string":
            out.append(Problem(f"{at}.{field}.suffix", f"a suffix is written after a string; this argument is sent as {kind}"))
        if argument.max_bytes is not None and field != "first_frame":
            out.append(Problem(f"{at}.{field}.max_bytes", "is the size limit of an image argument (first_frame)"))
    return out


def usd(amount: Decimal) -> str:
    """Cents as cents ("0.10"); finer prices keep their digits ("0.125")."""
    return f"{amount:.2f}" if amount == amount.quantize(Decimal("0.01")) else f"{amount.normalize():f}"


def profile_table_row(profile: ModelProfile) -> Mapping[str, str]:
    """A profile as one row for people: lengths, sizes and prices."""
    sizes = []
    for o in profile.sizes:
        silent = o.usd_per_second_silent
        price = f"${usd(o.usd_per_second)}/s" + (f" (silent ${usd(silent)}/s)" if silent is not None else "")
        only = f" [{'/'.join(map(str, o.seconds))} s only]" if o.seconds else ""
        sizes.append(f"{o.size} {price}{only}" + (" (beyond spec)" if o.beyond_spec else ""))
    return {
        "profile": profile.name,
        "model": profile.model,
        "endpoint": profile.endpoint,
        "seconds": ", ".join(map(str, profile.seconds)),
        "sizes": "; ".join(sizes),
        "retires": profile.retires.isoformat() if profile.retires else "",
    }


__all__ = ["ModelCatalog", "builtin_catalog", "load_catalog", "parse_catalog", "profile_table_row"]
