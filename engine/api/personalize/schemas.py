"""Request shapes of personalize-runtime and personalize-events, with botocore's model limits."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.api.schemas import EventSchema

ARN = fields.String(validate=validate.Length(max=256))
ID = fields.String(validate=validate.Length(1, 256))
FILTER_VALUES = fields.Dict(
    keys=fields.String(validate=[validate.Length(1, 50), validate.Regexp(r"^[A-Za-z0-9_]+$")]),
    values=fields.String(validate=validate.Length(max=1000)),
    validate=validate.Length(max=25),
)
CONTEXT = fields.Dict(
    keys=fields.String(
        validate=[
            validate.Length(1, 150),
            validate.Regexp(r"^[A-Za-z\d_]+$", error="context keys are field names: letters, digits or _"),
        ]
    ),
    values=fields.String(validate=validate.Length(max=1000)),
    validate=validate.Length(max=150),
)
METADATA_COLUMNS = fields.Dict(
    keys=fields.String(validate=validate.OneOf(["ITEMS"])),
    values=fields.List(fields.String(validate=validate.Length(max=150)), validate=validate.Length(max=99)),
    validate=validate.Length(max=1),
)


class Promotion(Schema):
    name = fields.String(validate=[validate.Length(1, 63), validate.Regexp(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$")])
    percentPromotedItems = fields.Integer(validate=validate.Range(1, 100))
    filterArn = ARN
    filterValues = FILTER_VALUES


class GetRecommendations(Schema):
    campaignArn = ARN
    recommenderArn = ARN
    itemId = ID
    userId = ID
    numResults = fields.Integer(load_default=25, validate=validate.Range(0, 500))
    context = CONTEXT
    filterArn = ARN
    filterValues = FILTER_VALUES
    promotions = fields.List(fields.Nested(Promotion), validate=validate.Length(max=1))
    metadataColumns = METADATA_COLUMNS


class GetPersonalizedRanking(Schema):
    campaignArn = fields.String(required=True, validate=validate.Length(max=256))
    inputList = fields.List(ID, required=True, validate=validate.Length(1, 500))
    userId = fields.String(required=True, validate=validate.Length(1, 256))
    context = CONTEXT
    filterArn = ARN
    filterValues = FILTER_VALUES
    metadataColumns = METADATA_COLUMNS


class MetricAttribution(Schema):
    eventAttributionSource = fields.String(
        required=True, validate=[validate.Length(1, 1024), validate.Regexp(r"^[\x20-\x7E]*[\x21-\x7E]+[\x20-\x7E]*$")]
    )


class WireEvent(EventSchema):
    metricAttribution = fields.Nested(MetricAttribution)


class PutEvents(Schema):
    trackingId = fields.String(required=True, validate=validate.Length(1, 256))
    userId = fields.String(validate=validate.Length(1, 256))
    sessionId = fields.String(required=True, validate=validate.Length(1, 256))
    eventList = fields.List(fields.Nested(WireEvent), required=True, validate=validate.Length(1, 10))


class ItemRecord(Schema):
    itemId = fields.String(required=True, validate=validate.Length(1, 256))
    properties = fields.String(validate=validate.Length(1, 32000))


class UserRecord(Schema):
    userId = fields.String(required=True, validate=validate.Length(1, 256))
    properties = fields.String(validate=validate.Length(1, 24000))


class PutItems(Schema):
    datasetArn = fields.String(required=True, validate=validate.Length(max=256))
    items = fields.List(fields.Nested(ItemRecord), required=True, validate=validate.Length(1, 10))


class PutUsers(Schema):
    datasetArn = fields.String(required=True, validate=validate.Length(max=256))
    users = fields.List(fields.Nested(UserRecord), required=True, validate=validate.Length(1, 10))
