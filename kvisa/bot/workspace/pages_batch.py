"""Enterprise batches: a CSV or XLSX of candidates in the `kvisa assess` format, assessed row
by row (kvisa/bot/assess does the reading and the policy), every row shown with its verdict or
its problem, the results downloadable as CSV or XLSX. Results are kept a day, for the one who
uploaded them (and admins), then forgotten: they are the enterprise's, not applicants'."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from kvisa.bot.assess import batch
from kvisa.bot.assess.reading import FileProblem
from kvisa.bot.assess.writing import XlsxWriter
from kvisa.bot.i18n import Text
from kvisa.bot.workspace.accounts import may
from kvisa.bot.workspace.app import SESSION_KEY, Route, Workspace, actor
from kvisa.bot.workspace.security import same

MAX_UPLOAD = 10 * 1024 * 1024  # bytes: about 60,000 rows of CSV
KEEP = 24 * 3600  # seconds results are kept
SHOWN = 500  # rows shown on the page (the downloads have all)


def routes(ws: Workspace) -> list[Route]:
    pages = BatchPages(ws)
    return [
        Route("GET", "batch", pages.form, "agent"),
        Route("POST", "batch", pages.upload, "agent", csrf_in_handler=True),
        Route("GET", r"batch/{id:[0-9a-f]{24}}", pages.results, "agent"),
        Route("GET", r"batch/{id:[0-9a-f]{24}}/results.csv", pages.as_csv, "agent"),
        Route("GET", r"batch/{id:[0-9a-f]{24}}/results.xlsx", pages.as_xlsx, "agent"),
    ]


class Collected:
    """A ResultWriter that keeps the records."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, record: Mapping[str, Any]) -> None:
        self.records.append(dict(record))

    def close(self) -> None:
        pass

    def discard(self) -> None:
        pass


class BatchPages:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    async def form(
        self, request: web.Request, problem: str = "", status: int = 200
    ) -> web.Response:
        return self.ws.render(request, "batch.html", status=status, problem=problem)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """Read the form as it streams: the CSRF token first, then the file (up to 10 MB)."""
        t = self.ws.text(request)
        session = request[SESSION_KEY]
        token, name, data = "", "", b""
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError):  # not a multipart form
            return self.ws.refuse(request, 400, t("Choose a CSV or XLSX file."))
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "csrf":
                token = (await part.read(decode=True)).decode(errors="replace")[:200]
            elif part.name == "file":
                if not same(token, session.csrf):  # the token comes before the file
                    break
                name = (part.filename or "")[:200]
                chunks, size = [], 0
                while chunk := await part.read_chunk():
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        return await self.form(request, t("The file is larger than 10 MB."), 413)
                    chunks.append(chunk)
                data = b"".join(chunks)
        if not same(token, session.csrf):
            return self.ws.refuse(
                request, 403, t("This form has expired. Reload the page and try again.")
            )
        kind = (
            "xlsx"
            if name.lower().endswith(".xlsx")
            else "csv"
            if name.lower().endswith((".csv", ".txt"))
            else None
        )
        if kind is None or not data:
            return await self.form(request, t("Choose a CSV or XLSX file."), 400)
        try:
            records, messages = await asyncio.to_thread(self._assess, kind, data, t)
        except FileProblem as problem:
            return await self.form(request, t(problem.message, **problem.params), 400)
        staff = actor(request)
        batch_id = secrets.token_hex(12)
        kept = {
            "owner": staff.name,
            "file": name,
            "lang": t.lang,
            "rows": records,
            "notes": messages,
        }
        await self.ws.storage.set_value(
            f"ws:batch:{batch_id}", json.dumps(kept, ensure_ascii=False).encode(), KEEP
        )
        failed = sum(1 for r in records if "error" in r)
        await self.ws.audit.record(
            staff.name, "batch", detail=f"{len(records)} rows, {failed} not assessed"
        )
        raise web.HTTPSeeOther(f"/agency/batch/{batch_id}")

    def _assess(self, kind: str, data: bytes, t: Text) -> tuple[list[dict[str, Any]], list[str]]:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"upload.{kind}"
            path.write_bytes(data)
            table = batch.open_input(self.ws.flows, kind, path)  # type: ignore[arg-type]
            writer, err = Collected(), io.StringIO()
            today = self.ws.applicants.today()
            batch.run(self.ws.flows, t, table, today, writer, err, "upload")
            return writer.records, [line for line in err.getvalue().splitlines() if line]

    async def _kept(self, request: web.Request) -> dict[str, Any]:
        raw = await self.ws.storage.get_value(f"ws:batch:{request.match_info['id']}")
        if raw is None:
            raise web.HTTPNotFound()
        kept: dict[str, Any] = json.loads(raw)
        staff = actor(request)
        if kept.get("owner") != staff.name and not may(staff.role, "admin"):
            raise web.HTTPNotFound()
        return kept

    async def results(self, request: web.Request) -> web.StreamResponse:
        kept = await self._kept(request)
        rows = kept["rows"]
        return self.ws.render(
            request,
            "batch_results.html",
            batch_id=request.match_info["id"],
            file=kept["file"],
            rows=rows[:SHOWN],
            total=len(rows),
            failed=sum(1 for r in rows if "error" in r),
            notes=kept["notes"],
        )

    async def as_csv(self, request: web.Request) -> web.StreamResponse:
        kept = await self._kept(request)
        t = self.ws.text(request)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                t("Row"),
                t("ID"),
                t("Eligible"),
                t("Channels"),
                t("Age at application"),
                t("Why not eligible"),
                t("Checklist"),
                t("Warnings"),
                t("Problem: column"),
                t("Problem: expected"),
                t("Problem: value"),
            ]
        )
        for record in kept["rows"]:
            error = record.get("error") or {}
            if error:
                cells = [""] * 6 + [
                    error.get("column") or error.get("field"),
                    error.get("expected"),
                    error.get("value"),
                ]
            else:
                cells = [
                    "yes" if record.get("eligible") else "no",
                    ", ".join(record.get("channels", [])),
                    record.get("age_at_application"),
                    "\n".join(str(r["text"]) for r in record.get("reasons", [])),
                    "\n".join(str(i["title"]) for i in record.get("checklist", [])),
                    "\n".join(str(w["text"]) for w in record.get("warnings", [])),
                    "",
                    "",
                    "",
                ]
            writer.writerow([safe_cell(c) for c in [record.get("row"), record.get("id"), *cells]])
        await self.ws.audit.record(actor(request).name, "batch-download", detail="csv")
        return web.Response(
            body=("\ufeff" + out.getvalue()).encode(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="assessment.csv"'},
        )

    async def as_xlsx(self, request: web.Request) -> web.StreamResponse:
        kept = await self._kept(request)
        t = self.ws.text(request)

        def workbook() -> bytes:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "assessment.xlsx"
                writer = XlsxWriter(path, t)
                for record in kept["rows"]:
                    writer.write(record)
                writer.close()
                return path.read_bytes()

        body = await asyncio.to_thread(workbook)
        await self.ws.audit.record(actor(request).name, "batch-download", detail="xlsx")
        return web.Response(
            body=body,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": 'attachment; filename="assessment.xlsx"'},
        )


def safe_cell(value: object) -> object:
    """A text cell a spreadsheet would read as a formula is kept as text (a leading ')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
