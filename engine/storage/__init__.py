"""Storage: the table models, the :class:`Store` interface over them, and model artifacts."""

from engine.storage.store import (
    ApiKeyInfo,
    CampaignInfo,
    DatasetGroupInfo,
    DeliveryInfo,
    SolutionInfo,
    SolutionVersionInfo,
    Store,
)

__all__ = [
    "ApiKeyInfo",
    "CampaignInfo",
    "DatasetGroupInfo",
    "DeliveryInfo",
    "SolutionInfo",
    "SolutionVersionInfo",
    "Store",
]
