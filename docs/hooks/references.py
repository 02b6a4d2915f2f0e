"""An mkdocs hook: the reference pages, generated from the code at every build.

- ``reference/configuration.md``: every ``Settings`` field (its ``SORAFLOW_*`` variable, type,
  default and description, read from pydantic's field metadata), then the variables the
  built-in endpoints read (``OPENAI_API_KEY``, ``GOOGLE_CLOUD_PROJECT``...);
- ``reference/models.md``: the built-in model profiles, their endpoints, lengths, sizes and
  prices (``soraflow/models/builtin.yaml`` as the catalog reads it);
- ``reference/cli.md``: every command and option of the ``soraflow`` app, by typer's own
  Markdown generator (what ``typer soraflow.cli utils docs`` prints), so a command another
  module registers appears by itself.

Nothing is written to ``docs/``: the pages exist only in the build, so none can drift from the
code. ``mkdocs.yml`` names this file under ``hooks:``.
"""

from __future__ import annotations

import types
import typing
from decimal import Decimal
from pathlib import Path

from mkdocs.structure.files import File, Files

GENERATED = "This page is generated from the code each time the documentation is built."


def on_files(files: Files, config) -> Files:
    for path, make in (
        ("reference/configuration.md", configuration_page),
        ("reference/models.md", models_page),
        ("reference/cli.md", cli_page),
    ):
        files.append(File.generated(config, path, content=make()))
    return files


# --- configuration ------------------------------------------------------------------------------


def configuration_page() -> str:
    # Written here rather than by a generator package (settings-doc, pydantic-settings-export):
    # pydantic already gives every field's name, type, default and description, and the page
    # wants a section per setting in this site's words, and the endpoints' variables, which no such tool knows.
    from soraflow.models import builtin_catalog
    from soraflow.settings import Settings

    prefix = Settings.model_config.get("env_prefix", "")
    env_file = Settings.model_config.get("env_file")
    lines = [
        "# Configuration reference",
        "",
        GENERATED,
        "",
        f"soraflow reads its settings from the environment, or from a `{env_file}` file in the working "
        "directory (pydantic-settings); a variable in the environment wins over the file. Each setting "
        f"is `{prefix}` followed by the field's name in capitals. Endpoints read their own variables "
        "(below), and no key is ever a setting.",
        "",
        "## Settings",
        "",
    ]
    for name, field in Settings.model_fields.items():
        variable = f"{prefix}{name}".upper()
        default = field.get_default(call_default_factory=True)
        lines += [
            f"### `{variable}`",
            "",
            " ".join((field.description or "").split()),
            "",
            f"*{_type_name(field.annotation)}*; " + ("not set by default" if default is None else f"default {_default_text(default)}"),
            "",
        ]
    lines += [
        "",
        "## Variables of the built-in endpoints",
        "",
        "Each endpoint names the variables it reads (`key_env`, `base_url_env`, `project_env`, "
        "`location_env`, `identity_env` in its entry); an endpoint of your own names its own. "
        "See [Models and endpoints](../models.md).",
        "",
        "| variable | endpoint | what it gives |",
        "|---|---|---|",
    ]
    roles = {
        "key_env": "its key (secret: never logged)",
        "base_url_env": "its base URL, over `{base_url}`",
        "project_env": "the Google Cloud project (with application-default credentials)",
        "location_env": "the Google Cloud location, over `{location}`",
        "identity_env": "its identity in clip keys, over its URL",
    }
    for endpoint in builtin_catalog().endpoints.values():
        for attribute, role in roles.items():
            if variable := getattr(endpoint, attribute):
                what = role.format(base_url=endpoint.base_url, location=endpoint.location)
                lines.append(f"| `{variable}` | `{endpoint.name}` ({endpoint.dialect}) | {_cell(what)} |")
    return "\n".join(lines) + "\n"


def _type_name(annotation) -> str:
    """A field's type as a reader says it: ``number``, ``path or none``, ``when_supported | when_required``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is dict:
        return "JSON object"
    if origin in (list, tuple, set, frozenset):
        return f"JSON list of {_type_name(args[0])}" if args else "JSON list"
    if annotation is type(None):
        return "none"
    names = {"Path": "path", "SecretStr": "secret", "Decimal": "decimal", "str": "text", "int": "integer", "float": "number", "bool": "boolean"}
    name = getattr(annotation, "__name__", str(annotation))
    return names.get(name, name)


def _default_text(default) -> str:
    if isinstance(default, Path) and default.is_relative_to(Path.home()):
        return f"`~/{default.relative_to(Path.home())}`"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{int(default)}`"
    if default == {}:
        return "`{}`"
    return f"`{default}`" if str(default) else '`""`'


def _cell(text: str) -> str:
    """Table-safe: one line, and a ``|`` outside code does not end the cell."""
    parts = " ".join(str(text).split()).split("`")
    return "`".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


# --- built-in models ----------------------------------------------------------------------------


def models_page() -> str:
    from soraflow.models import builtin_catalog

    catalog = builtin_catalog()
    lines = [
        "# Built-in models",
        "",
        GENERATED,
        "",
        "The model profiles soraflow ships, as `soraflow models` lists them. Prices are USD per "
        "generated second; a file of your own adds profiles or overrides these "
        "([Models and endpoints](../models.md)).",
        "",
        "| profile | endpoint | model | clip lengths (s) | sizes: USD per second | retires |",
        "|---|---|---|---|---|---|",
    ]
    for profile in catalog.profiles.values():
        sizes = []
        for offer in profile.sizes:
            price = f"{offer.size}: {_usd(offer.usd_per_second)}"
            if offer.usd_per_second_silent is not None:
                price += f" ({_usd(offer.usd_per_second_silent)} silent)"
            if offer.seconds:
                price += f" ({', '.join(map(str, offer.seconds))} s only)"
            if offer.beyond_spec:
                price += " (beyond spec)"
            sizes.append(price)
        lengths = ", ".join(map(str, profile.seconds))
        if profile.beyond_spec_seconds:
            lengths += f" (beyond spec: {', '.join(map(str, profile.beyond_spec_seconds))})"
        lines.append(
            f"| `{profile.name}` | `{profile.endpoint}` | `{profile.model}` | {lengths} | {'<br>'.join(sizes)} | "
            f"{profile.retires or '—'} |"
        )
    return "\n".join(lines) + "\n"


def _usd(value: Decimal) -> str:
    return f"${value:.2f}"


# --- the command line ---------------------------------------------------------------------------


def cli_page() -> str:
    import typer
    from typer.cli import get_docs_for_click

    from soraflow.cli import app

    command = typer.main.get_command(app)
    context = typer.Context(command, info_name="soraflow")
    # typer's `utils docs` command reads the app's markup mode from the context the same way.
    context.ensure_object(dict)[typer.cli.MARKUP_MODE_KEY] = app.rich_markup_mode
    text = get_docs_for_click(obj=command, ctx=context, name="soraflow", title="CLI reference")
    title, _, rest = text.partition("\n\n")
    return f"{title}\n\n{GENERATED} Every command also answers `--help`.\n\n{rest}"
