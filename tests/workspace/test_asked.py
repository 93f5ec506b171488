"""A question the bot cannot answer reaches the staff queue: the applicant asks it on Telegram,
the bot says it does not know and offers /human, and /human puts the question itself in front
of the agency's staff on /agency/conversations."""

from __future__ import annotations

from kvisa.identity import UserKey
from tests.channels.telegram.conftest import interview
from tests.support import ACADEMIC
from tests.workspace.conftest import Start


async def test_an_unanswered_question_goes_to_the_staff_queue_with_human(agency: Start) -> None:
    ag = await agency()
    user = ag.tg.user(91)
    await interview(user, **ACADEMIC)
    question = "Can my husband get a dependant visa if I come on the K visa?"
    replies = await user.send(question)
    assert any("/human" in r.text for r in replies)
    replies = await user.send("/human")
    assert "A person at the agency will answer you here." in replies[0].text
    assert "Write your question here." not in replies[0].text  # it has the question already
    ref = ag.workspace.applicants.ref(UserKey("telegram", "91"))
    agent = await ag.staffer("aaron")
    page = await agent.get("/agency/conversations")
    assert question.replace("'", "&#39;") in page and f"/agency/conversations/{ref}/claim" in page
