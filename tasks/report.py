"""Prefect artifacts: the cost table, the film with its contact sheet, and a failure summary."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

from prefect import task

from soraflow import assembly, media
from soraflow.plan import estimate_rows
from soraflow.ledger import cap_rows, summarize
from soraflow.plan import Plan

from . import outbound, runtime
from .runtime import clean_errors


def _key(title: str, what: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"soraflow-{what}-{slug[:40] or 'film'}".rstrip("-")


@task(name="publish-estimate", cache_policy=runtime.NO_CACHE)
@clean_errors
def publish_estimate(plan: Plan) -> None:
    rows = estimate_rows(plan)
    rows.append({"shot": "TOTAL", "part": "", "take": "", "model": "", "size": "", "seconds": plan.total_seconds, "usd": f"{plan.total_usd:.2f}", "clip_key": ""})
    outbound.table_artifact(key=_key(plan.title, "estimate"), table=rows, description=f"Estimated cost of {plan.title!r}")


@task(name="publish-results", cache_policy=runtime.NO_CACHE)
@clean_errors
def publish_results(manifest: dict, out_dir: str, provenance_summary: str | None = None) -> None:
    """The cost table, and what the run made: the contact sheet shown in the page, where each
    output is, links that open in a browser (never a presigned URL: it carries credentials),
    and the film's provenance as `soraflow verify` reads it."""
    title = manifest["title"]
    rows = [
        {
            "shot": c["shot_id"],
            "part": c["part"],
            "take": f"{c['take']}{' (chosen)' if c['chosen'] else ''}",
            "job": c["job_id"],
            "seconds": c["seconds"],
            "usd": c["price_usd"],
            "new": "yes" if c["generated_this_run"] else "reused",
            "stored": c["storage_uri"],
        }
        for c in manifest["clips"]
    ]
    t, run = manifest["totals"], manifest["run"]
    rows.append({"shot": "ESTIMATED", "part": "", "take": "", "job": "", "seconds": t["planned_seconds"], "usd": t["estimated_usd"], "new": "", "stored": ""})
    rows.append({"shot": "BILLED (film)", "part": "", "take": "", "job": "", "seconds": t["billed_seconds"], "usd": t["billed_usd"], "new": "", "stored": ""})
    rows.append({"shot": "BILLED (this run)", "part": "", "take": "", "job": "", "seconds": run["billed_seconds"], "usd": run["billed_usd"], "new": f"{run['reused_clips']} reused", "stored": ""})
    outbound.table_artifact(key=_key(title, "cost"), table=rows, description=f"Cost ledger of {title!r}: estimated, billed for the film, billed this run")

    out = Path(out_dir)
    # Credential-free links (never a presigned URL); a file on the worker does not open in a browser.
    links = {name: o["link"] for name, o in (manifest.get("outputs") or {}).items() if o.get("link") and not o["link"].startswith("file:")}
    markdown = assembly.outputs_markdown(
        manifest, out, host=socket.gethostname(), sheet_jpeg=_sheet_thumbnail(out), links=links, provenance_summary=provenance_summary
    )
    outbound.markdown_artifact(markdown=markdown, key=_key(title, "film"), description=f"{title!r}: the film, its contact sheet and where they are")
    for name, link in links.items():
        # keyed apart from the film's page (soraflow-film-...): a link keyed "film" became that key's latest artifact
        outbound.link_artifact(link=link, link_text=name, key=_key(title, "link-" + name.split(".")[0].replace("_", "-")))


# A data: URI this size renders in the UI and keeps the artifact small.
THUMBNAIL_MAX_BYTES = 256 * 1024


def _sheet_thumbnail(out_dir: Path) -> bytes | None:
    with tempfile.TemporaryDirectory(prefix="soraflow-thumb-") as tmp:
        jpeg = media.thumbnail(out_dir / assembly.CONTACT_SHEET_NAME, Path(tmp) / "sheet.jpg").read_bytes()
    return jpeg if len(jpeg) <= THUMBNAIL_MAX_BYTES else None


@task(name="publish-spend", cache_policy=runtime.NO_CACHE)
@clean_errors
def publish_spend(plan: Plan) -> None:
    """The storyboard's spend from the ledger (by day, model and endpoint) and the caps beside
    what counts against them now."""
    spend = runtime.spend()
    rows = summarize(spend.rows(clip_keys=[c.clip_key for c in plan.clips]), by=("day", "storyboard", "profile", "endpoint"))
    for cap in cap_rows(runtime.spend_caps(), spend.totals()):
        rows.append({"day": f"CAP {cap['period']}", "storyboard": "", "profile": "", "endpoint": cap["endpoint"], "clips": "",
                     "paid_usd": f"{cap['counted_usd']} counted", "reserved_usd": f"{cap['left_usd']} left", "released_usd": f"cap {cap['cap_usd']}"})
    outbound.table_artifact(key=_key(plan.title, "spend"), table=rows, description=f"Spend of {plan.title!r} from the ledger, and the spend caps")


@task(name="publish-failures", cache_policy=runtime.NO_CACHE)
@clean_errors
def publish_failures(title: str, failures: list[dict]) -> None:
    lines = [f"# {len(failures)} shot(s) of {title!r} failed", "", "| shot | part | error |", "|---|---|---|"]
    lines += [f"| {f['shot_id']} | {f['part']} | {f['error'].replace('|', '/')} |" for f in failures]
    lines += ["", "A rerun regenerates only what failed or changed."]
    outbound.markdown_artifact(markdown="\n".join(lines), key=_key(title, "failures"))
