"""Automations reacting to the model watch: stop the scheduled batch when a model goes or prices move.

A model that is gone makes every render with it fail at the availability check; a price change
makes the batch's per-storyboard budget stale. Either way the scheduled ``render-folder`` is
paused until a person looks (resume it in the UI, or ``prefect deployment resume``), and,
with ``--notify BLOCK``, a notification block (Slack, e-mail, ...) is told why.

    python -m soraflow.deployments.automations.model_watch                 # create or update both
    python -m soraflow.deployments.automations.model_watch --notify slack  # also notify through a block
    python -m soraflow.deployments.automations.model_watch --print         # the JSON, for
                                                                  # `prefect automation create --from-json`
"""

from __future__ import annotations

import argparse
import json

from prefect import get_client
from prefect.events.actions import PauseDeployment, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

BATCH_DEPLOYMENT = "render-folder/render-folder"

# (automation name, event, why, notification body). Bodies are Jinja templates over the event.
AUTOMATIONS = (
    (
        "soraflow-model-unavailable",
        "soraflow.model.unavailable",
        "A Sora model this endpoint served is gone: pause the scheduled batch.",
        "{{ event.payload.message }} (endpoint {{ event.payload.endpoint }}). "
        "The render-folder deployment is paused.",
    ),
    (
        "soraflow-price-changed",
        "soraflow.price.changed",
        "Sora prices changed: pause the scheduled batch until budgets are reviewed.",
        "{{ event.payload.message }} (endpoint {{ event.payload.endpoint }}). "
        "The render-folder deployment is paused until budgets are reviewed.",
    ),
)


def definitions(batch_deployment_id, notify_block_id=None) -> list[AutomationCore]:
    found = []
    for name, event, why, body in AUTOMATIONS:
        actions = [PauseDeployment(source="selected", deployment_id=batch_deployment_id)]
        if notify_block_id is not None:
            actions.append(SendNotification(block_document_id=notify_block_id, subject=f"soraflow: {event}", body=body))
        found.append(
            AutomationCore(
                name=name,
                description=why,
                tags=["soraflow"],
                trigger=EventTrigger(
                    expect={event},
                    match={"prefect.resource.id": "soraflow.model.*"},
                    posture=Posture.Reactive,
                    threshold=1,
                    within=0,
                ),
                actions=actions,
            )
        )
    return found


def _comparable(automation) -> dict:
    """An automation's definition without server-assigned ids, for an equality check."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("id", "created", "updated")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    fields = set(AutomationCore.model_fields)
    return strip(automation.model_dump(mode="json", include=fields))


def ensure_automations(*, notify_block: str | None = None, batch_deployment: str = BATCH_DEPLOYMENT) -> dict[str, str]:
    """Create the automations, or update them in place when they exist (by name)."""
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(batch_deployment)
        block_id = None
        if notify_block:
            block_type, _, block_name = notify_block.rpartition("/")
            block_id = client.read_block_document_by_name(block_name, block_type_slug=block_type or "slack-webhook").id
        ids = {}
        for automation in definitions(deployment.id, block_id):
            existing = client.read_automations_by_name(automation.name)
            if existing:
                # Rewrite only what changed: every update re-arms the server's triggers, and on
                # SQLite a burst of automation writes contends with event processing.
                if _comparable(existing[0]) != _comparable(automation):
                    client.update_automation(existing[0].id, automation)
                ids[automation.name] = str(existing[0].id)
            else:
                ids[automation.name] = str(client.create_automation(automation))
        return ids


def main() -> None:  # pragma: no cover - command line
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notify", metavar="[BLOCK_TYPE/]BLOCK_NAME", help="notification block (default type slack-webhook)")
    parser.add_argument("--deployment", default=BATCH_DEPLOYMENT, help="the deployment to pause (FLOW/DEPLOYMENT)")
    parser.add_argument("--print", action="store_true", help="print the definitions as JSON instead of creating them")
    args = parser.parse_args()
    if args.print:
        with get_client(sync_client=True) as client:
            deployment_id = client.read_deployment_by_name(args.deployment).id
        print(json.dumps([a.model_dump(mode="json") for a in definitions(deployment_id)], indent=2))
        return
    for name, automation_id in ensure_automations(notify_block=args.notify, batch_deployment=args.deployment).items():
        print(f"{name}: {automation_id}")


if __name__ == "__main__":  # pragma: no cover
    main()
