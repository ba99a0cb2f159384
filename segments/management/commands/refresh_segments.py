"""`manage.py refresh_segments [code ...] [--kind persona ...] [--sync]`."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from segments.models import Segment, SegmentKind, SegmentRefresh
from segments.services import (
    segment_refresh_many,
    segment_refresh_start,
    segments_refresh_all,
)


class Command(BaseCommand):
    help = "Refresh segment membership (all active segments, or the given codes)."

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", help="Segment codes (default: all active).")
        parser.add_argument("--kind", action="append", choices=SegmentKind.values,
                            help="Only segments of this kind (repeatable).")
        parser.add_argument("--sync", action="store_true",
                            help="Run in this process instead of queuing for a worker.")

    def handle(self, *args, codes, kind, sync, **options):
        try:
            if codes:
                found = {s.code: s for s in Segment.objects.filter(code__in=codes)}
                missing = sorted(set(codes) - found.keys())
                if missing:
                    raise CommandError(f"unknown segments: {', '.join(missing)}")
                refreshes = [segment_refresh_start(segment=found[c], trigger="command",
                                                   queue=not sync) for c in codes]
            else:
                refreshes = segments_refresh_all(trigger="command", kinds=kind,
                                                 queue=not sync)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if sync:
            segment_refresh_many(refresh_ids=[r.pk for r in refreshes])
        for refresh in SegmentRefresh.objects.filter(pk__in=[r.pk for r in refreshes]) \
                .select_related("segment").order_by("pk"):
            self.stdout.write(f"{refresh.segment.code:<24} {refresh.status:<10} "
                              f"size={refresh.size} joined={refresh.joined} left={refresh.left}")

