"""Personalize ARNs ↔ Shelfwise resources, by name.

``arn:aws:personalize:<region>:<account>:campaign/<name>`` names the campaign ``<name>`` of the
caller's dataset group; region and account are the server's configured ones, so an ARN copied
from real Personalize code resolves once the names match.
"""

from __future__ import annotations

import re

from engine.config import Settings
from engine.errors import InvalidInput, NotFound

# botocore's model pattern for Arn: arn:([a-z\d-]+):personalize:.*:.*:.+
_ARN = re.compile(r"^arn:(?P<partition>[a-z\d-]+):personalize:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)$")


def make_arn(settings: Settings, resource: str) -> str:
    return f"arn:aws:personalize:{settings.aws_region}:{settings.aws_account}:{resource}"


def resource_name(settings: Settings, arn: str, kind: str) -> str:
    """The name in ``arn`` for a resource of ``kind`` (campaign, recommender, filter, ...)."""
    match = _ARN.match(arn or "")
    if not match:
        raise InvalidInput(f"{arn!r} is not a valid Personalize ARN")
    resource_kind, _, name = match["resource"].partition("/")
    if resource_kind != kind or not name:
        raise InvalidInput(f"{arn!r} is not a {kind} ARN")
    if match["account"] != settings.aws_account or (match["region"] and match["region"] != settings.aws_region):
        raise NotFound(f"{arn!r} belongs to another account or region than this server's")
    return name


def dataset_arn_parts(settings: Settings, arn: str) -> tuple[str, str]:
    """``dataset/<dataset group>/ITEMS`` → (dataset group, "ITEMS")."""
    name = resource_name(settings, arn, "dataset")
    group, _, dataset_type = name.rpartition("/")
    if not group or dataset_type.upper() not in ("ITEMS", "USERS", "INTERACTIONS"):
        raise InvalidInput(f"{arn!r} is not a dataset ARN (dataset/<dataset group>/ITEMS|USERS|INTERACTIONS)")
    return group, dataset_type.upper()
