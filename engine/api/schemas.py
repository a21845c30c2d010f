"""marshmallow schemas for the native /v1 API (field names follow Personalize's)."""

from __future__ import annotations

import json

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

ID = fields.String(validate=validate.Length(1, 256))


class RecommendationsRequest(Schema):
    campaign = fields.String(required=True, validate=validate.Length(1, 256))
    userId = fields.String(validate=validate.Length(1, 256))
    itemId = fields.String(validate=validate.Length(1, 256))
    numResults = fields.Integer(load_default=25, validate=validate.Range(0, 500))
    context = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 150)),
        values=fields.String(validate=validate.Length(0, 1000)),
        load_default=dict,
    )
    metadataColumns = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["ITEMS"])),
        values=fields.List(fields.String(validate=validate.Length(1, 150)), validate=validate.Length(max=10)),
        load_default=dict,
    )

    @validates_schema
    def metadata_limit(self, data, **kwargs):
        if data.get("metadataColumns") and data.get("numResults", 25) > 50:
            raise ValidationError("numResults can be at most 50 when metadataColumns are requested", "numResults")


class RankingRequest(Schema):
    campaign = fields.String(required=True, validate=validate.Length(1, 256))
    userId = fields.String(required=True, validate=validate.Length(1, 256))
    inputList = fields.List(
        fields.String(validate=validate.Length(1, 256)), required=True, validate=validate.Length(1, 500)
    )
    context = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    metadataColumns = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["ITEMS"])), values=fields.List(fields.String()), load_default=dict
    )


class JsonObjectString(fields.Field):
    """PutEvents ``properties``: a JSON object, sent as a string (or, natively, as an object)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, dict):
            return value
        if not isinstance(value, str) or not 1 <= len(value) <= 1024:
            raise ValidationError("must be a JSON object (or its text, 1-1024 characters)")
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise ValidationError("must be a JSON object")
        return parsed


class EventSchema(Schema):
    eventType = fields.String(required=True, validate=validate.Length(1, 256))
    sentAt = fields.Float(required=True, validate=validate.Range(0, 1e11, error="sentAt must be epoch seconds"))
    eventId = fields.String(validate=validate.Length(1, 256))
    eventValue = fields.Float(allow_none=True)
    itemId = fields.String(validate=validate.Length(1, 256))
    properties = JsonObjectString()
    recommendationId = fields.String(validate=validate.Length(1, 40))
    impression = fields.List(fields.String(validate=validate.Length(1, 256)), validate=validate.Length(1, 25))


class PutEventsRequest(Schema):
    trackingId = fields.String(required=True, validate=validate.Length(1, 256))
    userId = fields.String(validate=validate.Length(1, 256))
    sessionId = fields.String(required=True, validate=validate.Length(1, 256))
    eventList = fields.List(fields.Nested(EventSchema), required=True, validate=validate.Length(1, 10))
