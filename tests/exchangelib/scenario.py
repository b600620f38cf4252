"""Drives resa's Exchange simulator with exchangelib, an EWS client nobody
on the project wrote, the way resa uses Exchange: an Outlook user invites a
room (through the simulator's control API), then, impersonating the room
over NTLM with a fixed endpoint and version, the script lists the room's
calendar view, syncs its inbox, reads the meeting request, accepts it, and
checks through the control API that the organizer received the response.

It also resolves the organizer's name and lists the room lists and their
rooms. (exchangelib's free/busy call needs GetServerTimeZones, which the
simulator does not implement; GetUserAvailability is checked in Rust.)

Usage: scenario.py EWS_URL CONTROL_URL LOGIN PASSWORD ORGANIZER ROOM MAJOR.MINOR ROOM_LIST

Prints one JSON line with what it saw and exits 0; any failure raises, so
the exit status is non-zero and the traceback says which step failed.
"""

import datetime
import json
import sys
import urllib.request

from exchangelib import (
    IMPERSONATION,
    NTLM,
    Account,
    Build,
    Configuration,
    Credentials,
    EWSDateTime,
    EWSTimeZone,
    Version,
)
from exchangelib.items import CalendarItem, MeetingRequest


def control(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def main():
    ews_url, control_url, login, password, organizer, room, build, room_list = sys.argv[1:9]
    major, minor = (int(x) for x in build.split("."))
    body_text = "Accepté par le test exchangelib."

    uid = control(
        control_url,
        "/invite",
        {
            "as": organizer,
            "subject": "Comité de pilotage",
            "start": "2026-12-01T09:00:00",
            "end": "2026-12-01T10:30:00",
            "time_zone": "Europe/Paris",
            "attendees": [],
            "resources": [room],
            "body": "Ordre du jour : budget.",
        },
    )["uid"]

    config = Configuration(
        service_endpoint=ews_url,
        credentials=Credentials(username=login, password=password),
        auth_type=NTLM,
        version=Version(build=Build(major, minor)),
    )
    account = Account(
        primary_smtp_address=room,
        config=config,
        autodiscover=False,
        access_type=IMPERSONATION,
    )

    tz = EWSTimeZone("Europe/Paris")
    view = list(
        account.calendar.view(
            start=EWSDateTime(2026, 12, 1, 0, 0, tzinfo=tz),
            end=EWSDateTime(2026, 12, 2, 0, 0, tzinfo=tz),
        )
    )
    in_view = [i for i in view if isinstance(i, CalendarItem) and i.uid == uid]
    assert len(in_view) == 1, f"calendar view: {view!r}"
    assert in_view[0].subject == "Comité de pilotage", in_view[0].subject
    assert in_view[0].start == EWSDateTime(2026, 12, 1, 8, 0, tzinfo=EWSTimeZone("UTC")), in_view[0].start

    # Directory look-ups, as the service account itself.
    resolved = account.protocol.resolve_names([organizer])
    assert [m.email_address for m in resolved] == [organizer], resolved
    if (major, minor) >= (14, 0):
        lists = [r.email_address for r in account.protocol.get_roomlists()]
        assert lists == [room_list], lists
        rooms = [r.email_address for r in account.protocol.get_rooms(room_list)]
        assert rooms == [room], rooms
    inbox = account.inbox
    changes = list(inbox.sync_items())
    first_state = inbox.item_sync_state
    assert first_state, "no SyncState after the first sync"
    created = [item for change, item in changes if change == "create"]
    assert len(created) == 1, f"first sync: {changes!r}"

    fetched = list(account.fetch(ids=[(created[0].id, created[0].changekey)]))
    request = fetched[0]
    assert isinstance(request, MeetingRequest), f"fetched {request!r}"
    assert request.subject == "Comité de pilotage", request.subject
    # exchangelib's MeetingRequest has no UID field: follow the request to
    # its calendar item, as resa does with AssociatedCalendarItemId.
    assoc = request.associated_calendar_item_id
    assert assoc is not None, "no AssociatedCalendarItemId"
    tentative = list(account.fetch(ids=[(assoc.id, assoc.changekey)]))[0]
    assert isinstance(tentative, CalendarItem), tentative
    assert tentative.uid == uid, (tentative.uid, uid)
    assert tentative.my_response_type == "NoResponseReceived", tentative.my_response_type
    assert request.organizer.email_address == organizer, request.organizer
    assert request.start == in_view[0].start, (request.start, in_view[0].start)
    assert "budget" in (request.body or ""), request.body

    request.accept(body=body_text)

    # The request leaves the Inbox once answered, as on Exchange.
    later = list(inbox.sync_items())
    assert any(change == "delete" for change, _ in later), f"second sync: {later!r}"
    assert inbox.item_sync_state != first_state

    org_inbox = control(control_url, f"/mailboxes/{organizer}/inbox")["items"]
    responses = [i for i in org_inbox if i["kind"] == "MeetingResponse" and i["uid"] == uid]
    assert len(responses) == 1, org_inbox
    assert responses[0]["response"] == "Accept", responses[0]
    assert responses[0]["body"] == body_text, responses[0]

    print(
        json.dumps(
            {
                "ok": True,
                "uid": uid,
                "view": len(view),
                "first_sync": [c for c, _ in changes],
                "second_sync": [c for c, _ in later],
                "response": responses[0]["response"],
                "server_build": str(account.version.build),
                "checked_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            }
        )
    )


if __name__ == "__main__":
    main()
