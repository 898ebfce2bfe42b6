"""Cases through the web app: grouping, assignment, comments, evidence, dispositions, four-eyes, audit, labels."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from support.console import Browser
from sqlalchemy import select, update

from amlwatch.console import audit
from amlwatch.console.labels import export_labels
from amlwatch.console.schema import audit_log, cases, episodes
from amlwatch.evaluation import load_labels, load_negatives


def version(browser, case_id: int) -> str:
    return re.search(r'name="version" value="(\d+)"', browser.get(f"/cases/{case_id}").text).group(1)


def open_case(browser, *episode_ids, title="round trip acc-1/acc-2") -> int:
    response = browser.post("/cases", {"title": title, "episode_id": list(episode_ids)})
    assert response.status_code == 303, response.text
    return int(response.headers["location"].rsplit("/", 1)[1])


def test_confirmed_needs_a_second_users_approval(console):
    app, engine = console
    ana, sue, sam = Browser(app, "ana"), Browser(app, "sue"), Browser(app, "sam")
    case_id = open_case(ana, "al-1", "al-2")
    assert ana.post(f"/cases/{case_id}/dispose", {"disposition": "confirmed_suspicious", "note": "cycle",
                                                  "version": version(ana, case_id)}).status_code == 303
    page = ana.get(f"/cases/{case_id}").text
    assert "pending approval" in page and "Approve" not in page
    denied = ana.post(f"/cases/{case_id}/approve", {"version": version(ana, case_id)})
    assert denied.status_code == 403 and "supervisor role" in denied.text
    assert sue.post(f"/cases/{case_id}/approve", {"version": version(sue, case_id)}).status_code == 303
    with engine.connect() as conn:
        row = conn.execute(select(cases).where(cases.c.id == case_id)).one()
        states = set(conn.execute(select(episodes.c.status)).scalars())
    assert (row.status, row.disposition) == ("closed", "confirmed_suspicious") and states == {"closed"}
    assert "closed" in sam.get(f"/cases/{case_id}").text


def test_a_supervisor_cannot_approve_their_own_proposal(console):
    app, _ = console
    sue, sam = Browser(app, "sue"), Browser(app, "sam")
    case_id = open_case(sue, "al-1")
    sue.post(f"/cases/{case_id}/dispose", {"disposition": "confirmed_suspicious", "version": version(sue, case_id)})
    own = sue.post(f"/cases/{case_id}/approve", {"version": version(sue, case_id)})
    assert own.status_code == 403 and "four-eyes" in own.text
    assert sam.post(f"/cases/{case_id}/reject", {"version": version(sam, case_id), "note": "more"}).status_code == 303
    assert "open" in sam.get(f"/cases/{case_id}").text


def test_false_positive_closes_and_needs_information_keeps_it_open(console):
    app, engine = console
    ana = Browser(app, "ana")
    case_id = open_case(ana, "al-1")
    ana.post(f"/cases/{case_id}/dispose", {"disposition": "needs_information", "version": version(ana, case_id)})
    assert "needs info" in ana.get(f"/cases/{case_id}").text
    ana.post(f"/cases/{case_id}/dispose", {"disposition": "false_positive", "version": version(ana, case_id)})
    with engine.connect() as conn:
        assert conn.execute(select(cases.c.status, cases.c.disposition)).one() == ("closed", "false_positive")


def test_a_stale_form_is_refused_and_does_not_undo_the_newer_change(console):
    app, engine = console
    ana, sue = Browser(app, "ana"), Browser(app, "sue")
    case_id = open_case(ana, "al-1")
    old = version(ana, case_id)
    assert sue.post(f"/cases/{case_id}/assign", {"assignee": "sue", "version": old}).status_code == 303
    stale = ana.post(f"/cases/{case_id}/dispose", {"disposition": "false_positive", "version": old})
    assert stale.status_code == 409 and "changed since this page was loaded" in stale.text
    with engine.connect() as conn:
        assert conn.execute(select(cases.c.status)).scalar_one() == "open"


def test_an_analyst_assigns_only_to_themselves(console):
    app, _ = console
    ana = Browser(app, "ana")
    case_id = open_case(ana, "al-1")
    response = ana.post(f"/cases/{case_id}/assign", {"assignee": "bob", "version": version(ana, case_id)})
    assert response.status_code == 403 and "supervisor" in response.text


def test_an_alert_goes_into_one_open_case_only(console):
    app, _ = console
    ana = Browser(app, "ana")
    open_case(ana, "al-1")
    again = ana.post("/cases", {"title": "again", "episode_id": "al-1"})
    assert again.status_code == 400 and "already in case" in again.text


def test_comments_and_evidence_files(console):
    app, _ = console
    ana = Browser(app, "ana")
    case_id = open_case(ana, "al-1")
    ana.post(f"/cases/{case_id}/comment", {"body": "<script>alert(1)</script> payer differs"})
    response = ana.post(f"/cases/{case_id}/attach", files={"file": ("../../etc/statement.html", b"<h1>x</h1>", "text/html")})
    assert response.status_code == 303
    page = ana.get(f"/cases/{case_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; payer differs" in page and "<script>alert(1)" not in page
    assert f"<title>Case {case_id} · amlwatch</title>" in page
    history = page.split("History")[1]
    assert [a for a in ("case.create", "case.comment", "case.attach") if a in history] == ["case.create", "case.comment",
                                                                                            "case.attach"]
    link = re.search(r'href="(/cases/\d+/attachments/\d+)">statement.html<', page).group(1)
    download = ana.get(link)
    assert download.content == b"<h1>x</h1>" and download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment")


def test_every_action_is_in_a_verifiable_chain_that_names_tampering(console):
    app, engine = console
    ana, sue = Browser(app, "ana"), Browser(app, "sue")
    case_id = open_case(ana, "al-1")
    ana.post(f"/cases/{case_id}/comment", {"body": "looked at it"})
    ana.post(f"/cases/{case_id}/dispose", {"disposition": "confirmed_suspicious", "version": version(ana, case_id)})
    sue.post(f"/cases/{case_id}/approve", {"version": version(sue, case_id)})
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))]
        assert audit.verify(conn).ok
    assert actions == ["login", "login", "case.create", "case.comment", "case.propose_confirmed",
                       "case.approve_confirmed"]
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(actor="mallory"))
    with engine.connect() as conn:
        report = audit.verify(conn)
    assert not report.ok and report.problems == ["seq 4: content does not match its hash (changed)"]
    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 2))
    with engine.connect() as conn:
        assert any("seq 3: expected seq 2" in p for p in audit.verify(conn).problems)


def test_pii_views_are_audited_only_when_configured(console):
    app, engine = console
    Browser(app, "ana").get("/accounts/acc-1")
    app.state.settings.audit_pii_views = True
    Browser(app, "bob").get("/accounts/acc-1")
    with engine.connect() as conn:
        views = conn.execute(select(audit_log.c.actor).where(audit_log.c.action == "account.view")).scalars().all()
    assert views == ["bob"]


def test_dispositions_become_labels_that_evaluate_and_train_read(console, tmp_path):
    app, engine = console
    ana, sue = Browser(app, "ana"), Browser(app, "sue")
    confirmed = open_case(ana, "al-1")
    ana.post(f"/cases/{confirmed}/dispose", {"disposition": "confirmed_suspicious", "version": version(ana, confirmed)})
    cleared = open_case(ana, "al-2")
    ana.post(f"/cases/{cleared}/dispose", {"disposition": "false_positive", "version": version(ana, cleared)})
    with engine.connect() as conn:
        assert export_labels(conn, tmp_path / "pending.jsonl") == (0, 0)  # not approved yet
    sue.post(f"/cases/{confirmed}/approve", {"version": version(sue, confirmed)})
    with engine.connect() as conn:
        assert export_labels(conn, tmp_path / "labels.jsonl", tmp_path / "negatives.jsonl") == (2, 0)
    assert load_labels(tmp_path / "labels.jsonl") == {"tr-1": {"wash_trading"}, "tr-2": {"wash_trading"}}
    # tr-1 was confirmed in one case, so clearing it in another does not make it a negative
    assert load_negatives(tmp_path / "negatives.jsonl") == {}
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text('{"alert_id":"a","typology":"wash_trading","trade_ids":["tr-2"]}\n')
    done = subprocess.run([sys.executable, "-m", "amlwatch.cli", "evaluate", str(tmp_path / "labels.jsonl"),
                           str(alerts), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    wash = json.loads(done.stdout)["typologies"]["wash_trading"]
    assert (wash["labelled"], wash["caught"]) == (2, 1)


def test_false_positives_become_negatives(console, tmp_path):
    app, engine = console
    ana = Browser(app, "ana")
    cleared = open_case(ana, "al-2")
    ana.post(f"/cases/{cleared}/dispose", {"disposition": "false_positive", "version": version(ana, cleared)})
    with engine.connect() as conn:
        assert export_labels(conn, tmp_path / "l.jsonl", tmp_path / "n.jsonl") == (0, 1)
    assert load_negatives(tmp_path / "n.jsonl") == {"tr-1": f"console:false-positive-case-{cleared}"}


def test_kept_counts_follow_every_change_and_a_new_update_reopens_a_closed_episode(console):
    from support.console import alert_line

    from amlwatch.console import counts
    from amlwatch.console.ingest import store_alerts

    app, engine = console
    ana = Browser(app, "ana")
    with engine.begin() as conn:
        store_alerts(conn, [("e1", alert_line("ep-a-1", episode_id="ep-a", severity="low", score=0.3))], "s")
    case_id = open_case(ana, "ep-a", "al-2")
    ana.post(f"/cases/{case_id}/dispose", {"disposition": "false_positive", "version": version(ana, case_id)})
    with engine.begin() as conn:  # the pattern goes on: a later, stronger update of the closed episode
        store_alerts(conn, [("e2", alert_line("ep-a-2", episode_id="ep-a", episode_seq=2, severity="critical",
                                              score=0.95))], "s")
    with engine.connect() as conn:
        assert counts.counted(conn) == counts.recounted(conn)
        episode = conn.execute(select(episodes).where(episodes.c.episode_id == "ep-a")).one()
        reopened = conn.execute(select(audit_log.c.action, audit_log.c.target)
                                .where(audit_log.c.action == "episode.reopened")).all()
    assert (episode.status, episode.severity, episode.case_id, episode.alert_count) == ("open", "critical", None, 2)
    assert reopened == [("episode.reopened", "episode:ep-a")]
    api = ana.get("/api/inbox?status=open").json()
    assert api["total"] == 2 and api["by_severity"] == {"critical": 1, "high": 1, "medium": 0, "low": 0}
    assert ana.get("/api/inbox?status=closed").json()["total"] == 1


def test_an_alert_is_added_to_an_open_case_from_its_page(console):
    app, engine = console
    ana = Browser(app, "ana")
    case_id = open_case(ana, "al-1")
    page = ana.get("/alerts/al-2").text
    form = re.search(rf'<form method="post" action="/cases/{case_id}/add".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'name="(version|episode_id)" value="([^"]+)"', form))
    assert ana.post(f"/cases/{case_id}/add", fields).status_code == 303
    with engine.connect() as conn:
        assert dict(conn.execute(select(episodes.c.episode_id, episodes.c.case_id)).all()) == {"al-1": case_id,
                                                                                               "al-2": case_id}
    assert ana.post(f"/cases/{case_id}/add", fields).status_code == 409  # the same form again is stale
