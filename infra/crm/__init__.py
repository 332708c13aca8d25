"""mailspine reference CRM: a small service speaking a HubSpot CRM v3 compatible subset.

Entry points (wired to the ``mailspine crm`` CLI by the application):

* :func:`infra.crm.migrate.upgrade` -- apply the CRM's own Alembic migrations (schema ``crm``).
* :func:`infra.crm.tokens.create_token` / :func:`infra.crm.tokens.revoke_token` -- private-app tokens.
* :func:`infra.crm.app.create_app` -- the FastAPI application.
"""
