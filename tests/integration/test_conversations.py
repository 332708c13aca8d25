"""Thread reconstruction from In-Reply-To / References, and history that follows it."""

from __future__ import annotations

from app.db import Database
from app.repo import emails
from tools.history import sender_history


async def _stored(
    db: Database,
    message_id: str,
    *,
    sender: str,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
) -> int:
    async with db.transaction() as session:
        row = await emails.insert_email(
            session, account="conv", message_id=message_id, content_sha256=message_id, raw=b"x"
        )
        assert row is not None
        conversation = await emails.conversation_for(
            session, message_id=message_id, in_reply_to=in_reply_to, references=references or []
        )
        await emails.set_parsed(
            session,
            email_id=row.id,
            subject=f"about {message_id}",
            sender_address=sender,
            sender_name=None,
            sent_at=None,
            in_reply_to=in_reply_to,
            references=references or [],
            text_body="",
            verdict={},
            conversation_id=conversation,
        )
        return row.id


async def test_replies_join_the_conversation_of_what_they_answer(db: Database) -> None:
    root = await _stored(db, "<root@conv.test>", sender="ann@conv.test")
    reply = await _stored(
        db,
        "<r1@conv.test>",
        sender="support@conv.test",
        in_reply_to="<root@conv.test>",
        references=["<root@conv.test>"],
    )
    # A colleague answers from another address: same conversation, found through References.
    other = await _stored(
        db,
        "<r2@conv.test>",
        sender="bob@conv.test",
        in_reply_to="<r1@conv.test>",
        references=["<root@conv.test>", "<r1@conv.test>"],
    )
    unrelated = await _stored(db, "<x@conv.test>", sender="bob@conv.test")
    async with db.transaction() as session:
        rows = {e.id: e.conversation_id for e in await emails.list_emails(session, limit=1000)}
    assert rows[root] == rows[reply] == rows[other] == "<root@conv.test>"
    assert rows[unrelated] == "<x@conv.test>"

    items = await sender_history(db, before_id=other)
    assert {i["ref"] for i in items} == {f"email:{root}", f"email:{reply}"}
    assert all(i["source"] == "mailspine.emails" for i in items)


async def test_a_reply_to_an_unseen_message_is_keyed_by_the_thread_root(db: Database) -> None:
    email_id = await _stored(
        db,
        "<late@conv.test>",
        sender="c@conv.test",
        in_reply_to="<m2@elsewhere>",
        references=["<m1@elsewhere>", "<m2@elsewhere>"],
    )
    async with db.transaction() as session:
        row = await emails.get_email(session, email_id=email_id)
    assert row is not None and row.conversation_id == "<m1@elsewhere>"
