"""The Personalize-compatible wire API: boto3's personalize-runtime and personalize-events
clients work against Shelfwise with only ``endpoint_url`` and credentials changed."""
