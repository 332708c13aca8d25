"""Unit tests of the reference CRM's type tables, request models and search SQL (no database)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from infra.crm import association_types
from infra.crm.models import Company, Contact
from infra.crm.objects import ALL_TYPES, COMPANIES, CONTACTS, TICKETS, resolve
from infra.crm.schemas import Filter, FilterGroup
from infra.crm.schemas_objects import CompanyCreate, DealCreate, DealUpdate, TicketCreate, TicketUpdate
from infra.crm.scopes import ALL_SCOPES, validate_scopes
from infra.crm.search import search_condition


def test_every_association_type_has_an_inverse_and_ids_are_unambiguous() -> None:
    for source, target in association_types.DEFAULT_TYPE_IDS:
        assert (target, source) in association_types.DEFAULT_TYPE_IDS
    for kind in ALL_TYPES:
        ids = [
            type_id
            for (source, _), type_id in association_types.DEFAULT_TYPE_IDS.items()
            if source == kind.name
        ]
        assert len(ids) == len(set(ids)), f"{kind.name}: a type id must name one target type"
    assert association_types.target_of(TICKETS, 16) == "contacts"
    assert association_types.target_of(TICKETS, 202) is None
    assert association_types.default_type_id(CONTACTS, CONTACTS) is None


def test_object_types_resolve_like_hubspot_paths() -> None:
    assert resolve("contacts") is CONTACTS and resolve("Contact") is CONTACTS and resolve("0-1") is CONTACTS
    assert resolve("0-2") is COMPANIES and resolve("widgets") is None
    assert {kind.read_scope for kind in ALL_TYPES} | {kind.write_scope for kind in ALL_TYPES} == ALL_SCOPES
    assert validate_scopes(["tickets", " crm.objects.deals.read ", "tickets"]) == [
        "crm.objects.deals.read",
        "tickets",
    ]
    with pytest.raises(ValueError):
        validate_scopes(["crm.objects.tickets.read"])


def test_request_models_validate_hubspot_properties() -> None:
    ticket = TicketCreate.model_validate(
        {"properties": {"subject": "S", "hs_pipeline_stage": 2, "x_custom": True}}
    )
    assert ticket.properties.as_dict() == {"subject": "S", "hs_pipeline_stage": "2", "x_custom": "true"}
    assert TicketUpdate.model_validate({"properties": {"content": None}}).properties.as_dict() == {
        "content": ""
    }
    deal = DealUpdate.model_validate({"properties": {"amount": " 99.90 ", "closedate": "1717113600000"}})
    assert deal.properties.as_dict() == {"amount": "99.90", "closedate": "2024-05-31T00:00:00.000Z"}
    company = CompanyCreate.model_validate({"properties": {"domain": "http://WWW.Acme.example/"}})
    assert company.properties.as_dict() == {"domain": "www.acme.example"}
    invalid = [
        (TicketCreate, {"properties": {"subject": "S"}}),
        (TicketCreate, {"properties": {"subject": "S", "hs_pipeline_stage": "5"}}),
        (DealCreate, {"properties": {"dealname": "D", "dealstage": "closedwon", "amount": "NaN"}}),
        (DealCreate, {"properties": {"dealname": "D"}}),
        (CompanyCreate, {"properties": {"domain": "acme example"}}),
        (CompanyCreate, {"properties": {"name": "A", "bad-name": "x"}}),
        (CompanyCreate, {"properties": {"name": "A", "createdate": "x"}}),
        (CompanyCreate, {"properties": {"name": "A", "nested": {"a": 1}}}),
    ]
    for model, body in invalid:
        with pytest.raises(ValidationError):
            model.model_validate(body)


def _sql(model: type[Contact] | type[Company], *filters: Filter) -> str:
    condition = search_condition([FilterGroup(filters=list(filters))], model=model)
    return str(select(model.id).where(condition).compile(dialect=postgresql.dialect()))


def test_search_sql_uses_literal_property_keys_and_the_email_column() -> None:
    domain = _sql(Company, Filter(propertyName="domain", operator="EQ", value="Acme.example"))
    assert "lower(crm.companies.properties ->> 'domain')" in domain, "matches ix_companies_domain"
    email = _sql(Contact, Filter(propertyName="email", operator="IN", values=["A@b.example"]))
    assert "crm.contacts.email IN" in email
    token = _sql(Company, Filter(propertyName="name", operator="CONTAINS_TOKEN", value="*.example"))
    assert "LIKE" in token
    with pytest.raises(ValidationError):
        Filter(propertyName="name'--", operator="EQ", value="x")
    with pytest.raises(ValidationError):
        Filter(propertyName="name", operator="IN")
