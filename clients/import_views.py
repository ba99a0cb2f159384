"""Import pages (ops and admin only): upload, progress, result, error report, example files."""

from django import forms
from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ApplicationError
from core.models import AuditAction
from core.permissions import capability_required
from core.services import audit_record
from core.spreadsheet import csv_bytes

from .import_services import import_file_check, import_job_create
from .ingest import SPECS
from .models import ImportJob, ImportKind


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What the file contains"),
                             choices=ImportKind.choices)
    file = forms.FileField(label=gettext_lazy("File (.csv or .xlsx)"))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            import_file_check(name=upload.name, size=upload.size)
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from exc
        return upload


@capability_required("imports.run")
def import_list(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = import_job_create(kind=form.cleaned_data["kind"],
                                    file=form.cleaned_data["file"], user=request.user)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("imports:import_detail", pk=job.pk)
    jobs = ImportJob.objects.select_related("created_by")[:50]
    return render(request, "clients/import_list.html", {
        "form": form, "jobs": jobs, "kinds": ImportKind.choices,
        "max_mb": settings.IMPORT_MAX_UPLOAD_BYTES // (1024 * 1024)})


def _job_context(job: ImportJob) -> dict:
    return {"job": job, "finished": not job.is_active, "percent": job.percent_done}


@capability_required("imports.run")
def import_detail(request, pk: int):
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    return render(request, "clients/import_detail.html", _job_context(job))


@capability_required("imports.run")
def import_progress(request, pk: int):
    job = get_object_or_404(ImportJob, pk=pk)
    return render(request, "clients/import_progress.html", _job_context(job))


@capability_required("imports.run")
def import_errors_csv(request, pk: int):
    job = get_object_or_404(ImportJob, pk=pk)
    if not job.error_report:
        raise Http404(_("This import has no error report."))
    audit_record(action=AuditAction.EXPORT, actor=request.user, object_type="import",
                 object_id=str(job.pk), detail={"report": "errors", "errors": job.error_count})
    return FileResponse(job.error_report.open("rb"), as_attachment=True,
                        filename=f"import-{job.pk}-errors.csv", content_type="text/csv")


@capability_required("imports.run")
def import_template(request, kind: str):
    spec = SPECS.get(kind)
    if spec is None:
        raise Http404(_("Unknown import kind."))
    rows = [spec.names, [spec.example.get(name, "") for name in spec.names]]
    response = HttpResponse(csv_bytes(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{kind}.csv"'
    return response
