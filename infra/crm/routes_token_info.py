"""``POST /oauth/v2/private-apps/get/access-token-info``: what a token may do (HubSpot-compatible).

HubSpot answers this for a private-app token sent in the body; mailspine uses it to check that a
tool's credential is valid and carries the scopes the tool needs (``mailspine tools list``). No
bearer header is needed: knowing the token is the proof. Only active tokens are described.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from infra.crm.deps import Runtime
from infra.crm.errors import INVALID_AUTHENTICATION, CrmError
from infra.crm.responses import error_responses
from infra.crm.tokens import authenticate

router = APIRouter(tags=["oauth"])
HUB_ID = 1  # the reference CRM is one account


class TokenInfoRequest(BaseModel):
    tokenKey: str = Field(min_length=1, max_length=512)


class TokenInfo(BaseModel):
    userId: int
    hubId: int
    appId: int
    scopes: list[str]


@router.post(
    "/oauth/v2/private-apps/get/access-token-info",
    response_model=TokenInfo,
    responses=error_responses(400, 401),
)
async def access_token_info(body: TokenInfoRequest, runtime: Runtime) -> TokenInfo:
    async with runtime.session() as session:
        principal = await authenticate(session=session, token=body.tokenKey)
    if principal is None:
        raise CrmError(401, INVALID_AUTHENTICATION, "The access token is invalid, expired or revoked.")
    return TokenInfo(userId=0, hubId=HUB_ID, appId=principal.token_id, scopes=sorted(principal.scopes))
