"""Case pages: create from the inbox or an alert, work the case, dispose, approve (four-eyes)."""

from __future__ import annotations

from sqlalchemy import select
from starlette.responses import RedirectResponse, Response

from amlwatch.console import cases as service
from amlwatch.console.schema import case_attachments, users
from amlwatch.console.web import ViewError, one, page, render, version_of


def _path_id(request) -> int:
    try:
        return int(request.path_params["case_id"])
    except ValueError:
        raise ViewError(404, "case_id", "no such case") from None


def _act(ctx, action):
    try:
        with ctx.engine.begin() as conn:
            return action(conn)
    except service.CaseError as error:
        raise ViewError(error.status, error.field, error.reason) from None


def _back(case_id: int) -> Response:
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@page()
def case_list(request, ctx):
    status = request.query_params.get("status", "")
    with ctx.engine.connect() as conn:
        rows = service.case_list(conn, status)
        names = dict(conn.execute(select(users.c.id, users.c.username)).all())
    return render(request, "cases.html", {"cases": rows, "names": names, "status": status,
                                          "dispositions": service.DISPOSITIONS})


@page()
def case_create(request, ctx):
    episode_ids = ctx.form.get("episode_id", [])
    case_id = _act(ctx, lambda conn: service.create_case(conn, ctx.user, one(ctx, "title"), episode_ids))
    return _back(case_id)


@page()
def case_page(request, ctx):
    case_id = _path_id(request)
    detail = _act(ctx, lambda conn: service.case_detail(conn, case_id))
    with ctx.engine.connect() as conn:
        people = conn.execute(select(users.c.username).where(users.c.active.is_(True)).order_by(users.c.username)).scalars().all()
    return render(request, "case.html", detail | {"people": people, "dispositions": service.DISPOSITIONS})


def _case_action(name: str, role: str = "analyst"):
    @page(role)
    def handler(request, ctx):
        case_id = _path_id(request)
        if name == "comment":
            _act(ctx, lambda conn: service.comment(conn, ctx.user, case_id, one(ctx, "body")))
        elif name == "attach":
            if "file" not in ctx.files:
                raise ViewError(400, "file", "choose a file to attach")
            filename, content_type, data = ctx.files["file"]
            _act(ctx, lambda conn: service.attach(conn, ctx.user, case_id, filename, content_type, data))
        else:
            version = version_of(ctx)
            actions = {
                "assign": lambda conn: service.assign(conn, ctx.user, case_id, version, one(ctx, "assignee")),
                "add": lambda conn: service.add_episodes(conn, ctx.user, case_id, version, ctx.form.get("episode_id", [])),
                "dispose": lambda conn: service.dispose(conn, ctx.user, case_id, version, one(ctx, "disposition"),
                                                        one(ctx, "note")),
                "approve": lambda conn: service.approve(conn, ctx.user, case_id, version, one(ctx, "note")),
                "reject": lambda conn: service.reject(conn, ctx.user, case_id, version, one(ctx, "note")),
            }
            _act(ctx, actions[name])
        return _back(case_id)
    handler.__name__ = f"case_{name}"
    return handler


case_comment = _case_action("comment")
case_attach = _case_action("attach")
case_assign = _case_action("assign")
case_add = _case_action("add")
case_dispose = _case_action("dispose")
case_approve = _case_action("approve", role="supervisor")
case_reject = _case_action("reject")


@page()
def attachment(request, ctx):
    case_id = _path_id(request)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(case_attachments).where(case_attachments.c.case_id == case_id,
                                                          case_attachments.c.id == int(request.path_params["file_id"]))).first()
    if row is None:
        raise ViewError(404, "file_id", "no such attachment")
    safe = row.filename.replace('"', "").replace("\r", "").replace("\n", "")
    # Served as a download, never rendered: an uploaded HTML file must not run as the console's own page.
    return Response(row.data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})


REPORT_MEDIA = {"xml": "application/xml", "json": "application/json", "csv": "text/csv"}


def report_download(data: bytes, fmt: str, name: str) -> Response:
    """A report as a download (never rendered in the page)."""
    return Response(data, media_type=REPORT_MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


@page()
def case_report(request, ctx):
    """The case's suspicious transaction report draft as a download (BSTR XML validated against the shipped
    schema, or JSON), audited. Any analyst may draft an approved confirmed case; a draft of a case not yet
    approved is a supervisor's preview, so no report leaves before the second pair of eyes."""
    from amlwatch.console import audit
    from amlwatch.console.reports import CaseNotReportable, CaseUnknown, case_str
    from amlwatch.reporting.commands import report_audit_detail
    from amlwatch.reporting.errors import ReportingError
    from amlwatch.reporting.exports import to_json
    from amlwatch.reporting.xml import bstr_xml

    case_id = _path_id(request)
    fmt = one(ctx, "format", "xml")
    if fmt not in ("xml", "json"):
        raise ViewError(400, "format", "xml or json")
    anyway = one(ctx, "draft_anyway") == "1"
    if anyway and not ctx.user.has_role("supervisor"):
        raise ViewError(403, "role", "drafting a case before its confirmed disposition is approved needs the "
                                     f"supervisor role; you are {ctx.user.role}")
    config = ctx.settings.report_config().str_report
    try:
        with ctx.engine.begin() as conn:
            draft = case_str(conn, case_id, config=config, message_kind=one(ctx, "kind", "normal"),
                             original=one(ctx, "original").strip() or None, draft_anyway=anyway)
            data = bstr_xml(draft) if fmt == "xml" else to_json(draft)
            audit.append(conn, ctx.user.username, "case.report_str", f"case:{case_id}",
                         report_audit_detail(draft, fmt, data, anyway))
    except CaseUnknown as error:
        raise ViewError(404, "case_id", error.reason) from None
    except CaseNotReportable as error:
        raise ViewError(409, error.field, error.reason) from None
    except ReportingError as error:
        raise ViewError(400, error.field, error.reason) from None
    return report_download(data, fmt, f"case-{case_id}-{draft['report_id']}")
