"""The reports page: a day's large-value transaction reports (HVTR XML, JSON or CSV) from the events the console holds."""

from __future__ import annotations

from amlwatch.console.views.cases import report_download
from amlwatch.console.web import ViewError, one, page, render

LVTR_FORMATS = ("xml", "json", "csv")


@page("supervisor")
def reports_page(request, ctx):
    lvtr = ctx.settings.report_config().lvtr
    return render(request, "reports.html", {"day_offset": lvtr.day_offset, "formats": LVTR_FORMATS})


@page("supervisor")
def lvtr_download(request, ctx):
    """Large-value reports cover every customer trading that day, a bulk export: supervisors only, audited."""
    import hashlib

    from amlwatch.console import audit
    from amlwatch.console.reports import day_lvtr
    from amlwatch.reporting.errors import ReportingError
    from amlwatch.reporting.exports import lvtr_csv, to_json
    from amlwatch.reporting.xml import hvtr_xml

    day, fmt = one(ctx, "day").strip(), one(ctx, "format", "xml")
    if fmt not in LVTR_FORMATS:
        raise ViewError(400, "format", ", ".join(LVTR_FORMATS))
    config = ctx.settings.report_config()
    try:
        with ctx.engine.begin() as conn:
            reports = day_lvtr(conn, day, config)
            if fmt == "xml":
                data = hvtr_xml(reports, day, institution_name=config.lvtr.institution_name,
                                institution_code=config.lvtr.institution_code, day_offset=config.lvtr.day_offset)
            else:
                data = to_json(reports) if fmt == "json" else lvtr_csv(reports)
            audit.append(conn, ctx.user.username, "report.lvtr", f"day:{day}",
                         {"format": fmt, "reports": [r["report_id"] for r in reports],
                          "sha256": hashlib.sha256(data).hexdigest()})
    except ReportingError as error:
        raise ViewError(400, error.field, error.reason) from None
    return report_download(data, fmt, f"hvtr-{day}" if fmt == "xml" else f"lvtr-{day}")
