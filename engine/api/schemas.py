"""marshmallow schemas for the native /v1 API (field names follow Personalize's)."""

from __future__ import annotations

import json

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from engine.errors import InvalidInput
from engine.serving.filters import filter_name_from
from engine.serving.filters_values import MAX_ENTRIES, MAX_KEY_LENGTH, MAX_VALUE_LENGTH

ID = fields.String(validate=validate.Length(1, 256))
NAME = validate.Regexp(
    r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*$", error="1-63 letters, digits, '-' or '_', starting with a letter or digit"
)


def context_field() -> fields.Dict:
    """GetRecommendations' context map, with botocore's limits: at most 150 entries, keys of 1-150
    letters, digits or _ (the interactions schema's contextual fields), values up to 1000 characters."""
    return fields.Dict(
        keys=fields.String(
            validate=[
                validate.Length(1, 150),
                validate.Regexp(r"^[A-Za-z\d_]+$", error="context keys are field names: letters, digits or _"),
            ]
        ),
        values=fields.String(validate=validate.Length(max=1000)),
        validate=validate.Length(max=150, error="at most 150 entries"),
        load_default=dict,
    )


def filter_values_field() -> fields.Dict:
    """Personalize's FilterValues map: each value is written as in the expression ("\\"a\\",\\"b\\"")."""
    return fields.Dict(
        keys=fields.String(
            validate=[
                validate.Length(1, MAX_KEY_LENGTH),
                validate.Regexp(r"^[A-Za-z0-9_]+$", error="parameter names are letters, digits or _"),
            ]
        ),
        values=fields.String(validate=validate.Length(max=MAX_VALUE_LENGTH)),
        validate=validate.Length(max=MAX_ENTRIES, error=f"at most {MAX_ENTRIES} entries"),
        load_default=dict,
    )


class FilterReference(Schema):
    """``filter`` (a name) or ``filterArn`` (arn:...:filter/NAME), and its ``filterValues``;
    loads as ``filterName``."""

    filter = fields.String(validate=[validate.Length(1, 63), NAME])
    filterArn = fields.String(validate=validate.Length(1, 256))
    filterValues = filter_values_field()

    @post_load
    def resolve_filter(self, data, **kwargs):
        try:
            data["filterName"] = filter_name_from(data.pop("filter", None), data.pop("filterArn", None))
        except InvalidInput as exc:
            raise ValidationError(exc.message, "filterArn") from exc
        return data


class PromotionRequest(FilterReference):
    name = fields.String(required=True, validate=[validate.Length(1, 63), NAME])
    percentPromotedItems = fields.Integer(required=True, strict=True, validate=validate.Range(1, 100))

    @validates_schema
    def needs_filter(self, data, **kwargs):
        if not data.get("filter") and not data.get("filterArn"):
            raise ValidationError("a promotion needs a filter (filter or filterArn) to draw its items from", "filter")


class RecommendationsRequest(FilterReference):
    #: Exactly one of a campaign's name and a domain recommender's name.
    campaign = fields.String(validate=validate.Length(1, 256))
    recommender = fields.String(validate=validate.Length(1, 256))
    userId = fields.String(validate=validate.Length(1, 256))
    itemId = fields.String(validate=validate.Length(1, 256))
    numResults = fields.Integer(load_default=25, validate=validate.Range(0, 500))
    context = context_field()
    metadataColumns = fields.Dict(
        keys=fields.String(validate=validate.OneOf(["ITEMS"])),
        values=fields.List(fields.String(validate=validate.Length(1, 150)), validate=validate.Length(max=10)),
        load_default=dict,
    )
    promotions = fields.List(
        fields.Nested(PromotionRequest), validate=validate.Length(max=1, error="at most 1 promotion"), load_default=list
    )

    @validates_schema
    def one_deployment(self, data, **kwargs):
        if bool(data.get("campaign")) == bool(data.get("recommender")):
            raise ValidationError("give exactly one of campaign and recommender", "campaign")

    @validates_schema
    def metadata_limit(self, data, **kwargs):
        if data.get("metadataColumns") and data.get("numResults", 25) > 50:
            raise ValidationError("numResults can be at most 50 when metadataColumns are requested", "numResults")


class RankingRequest(FilterReference):
    campaign = fields.String(required=True, validate=validate.Length(1, 256))
    userId = fields.String(required=True, validate=validate.Length(1, 256))
    inputList = fields.List(
        fields.String(validate=validate.Length(1, 256)), required=True, validate=validate.Length(1, 500)
    )
    context = context_field()
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
