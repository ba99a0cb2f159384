"""REST API of the outreach app (docs/api.md "Trading calendar", "Tasks")."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from clients.api.common import require_object
from clients.api.schemas import errors
from clients.validators import validate_plausible_date
from core.api import OutputModelSerializer
from core.permissions import HasCapability

from .calendar import MAX_RANGE_DAYS, calendar_known, trading_days
from .models import RMTask, TaskOutcome, TaskStatus
from .selectors import contact_policy_get, task_get, task_queryset_for
from .services import NOTE_MAX, contact_policy_set, task_follow_up_create, task_update

CanSeeTasks = HasCapability.of("tasks.view")
CanManagePolicy = HasCapability.of("contact_policy.manage")


class _RangeQuery(serializers.Serializer):
    def get_fields(self):
        return {"from": serializers.DateField(validators=[validate_plausible_date]),
                "to": serializers.DateField(validators=[validate_plausible_date])}

    def validate(self, attrs):
        start, end = attrs["from"], attrs["to"]
        if end < start:
            raise serializers.ValidationError({"to": ["Must not be before 'from'."]})
        if (end - start).days >= MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"to": [f"At most {MAX_RANGE_DAYS} days from 'from' in one request."]})
        return attrs


class _TradingDaysOutput(serializers.Serializer):
    def get_fields(self):
        return {"from": serializers.DateField(), "to": serializers.DateField(),
                "count": serializers.IntegerField(),
                "trading_days": serializers.ListField(child=serializers.DateField()),
                "official_schedule_known": serializers.BooleanField(
                    help_text="False when part of the range lies in a year whose official "
                              "holiday schedule is not known yet: there, weekdays count as "
                              "trading days unless an admin entered a correction.")}


@extend_schema(tags=["calendar"])
class TradingDaysView(APIView):
    @extend_schema(
        summary="Trading days of the Shanghai and Shenzhen exchanges in a range",
        parameters=[OpenApiParameter("from", str, required=True, description="YYYY-MM-DD"),
                    OpenApiParameter("to", str, required=True,
                                     description=f"YYYY-MM-DD, at most {MAX_RANGE_DAYS} days "
                                                 "after from")],
        responses={200: _TradingDaysOutput, **errors(400, 401)})
    def get(self, request: Request) -> Response:
        query = _RangeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["from"], query.validated_data["to"]
        days = trading_days(start, end)
        return Response({
            "from": start.isoformat(), "to": end.isoformat(), "count": len(days),
            "trading_days": [d.isoformat() for d in days],
            "official_schedule_known": calendar_known(start) and calendar_known(end),
        })


# --- RM tasks (the call list) ----------------------------------------------------------------

class TaskOutput(OutputModelSerializer):
    client_no = serializers.CharField(source="client.client_no", allow_null=True, default=None)
    client_name = serializers.CharField(source="client.name", allow_null=True, default=None)
    assignee = serializers.CharField(source="assignee.username", allow_null=True, default=None)
    note = serializers.CharField(source="outcome_note")

    class Meta:
        model = RMTask
        fields = ["id", "client_no", "client_name", "assignee", "source", "title", "detail",
                  "status", "due_on", "outcome", "note", "outcome_at", "created_at", "done_at"]


class _TaskQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=[*TaskStatus.values, "all"], required=False)
    due_before = serializers.DateField(required=False, validators=[validate_plausible_date],
                                       help_text="Tasks due on or before this day.")


class TaskInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=TaskStatus.values, required=False)
    outcome = serializers.ChoiceField(choices=TaskOutcome.values, required=False,
                                      allow_blank=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX,
                                 trim_whitespace=True)
    due_on = serializers.DateField(required=False, allow_null=True,
                                   validators=[validate_plausible_date])
    follow_up_on = serializers.DateField(
        required=False, validators=[validate_plausible_date],
        help_text="The next follow-up: a new open task for the same client on the RM's list, "
                  "due that day (today or later; only the RM the task is assigned to). This "
                  "task is then done unless `status` says otherwise.")


class TaskPatchOutput(TaskOutput):
    follow_up = TaskOutput(read_only=True, allow_null=True,
                           help_text="The follow-up task created by `follow_up_on`, else null.")

    class Meta(TaskOutput.Meta):
        fields = [*TaskOutput.Meta.fields, "follow_up"]


@extend_schema(tags=["tasks"])
class TaskListView(generics.ListAPIView):
    permission_classes = [CanSeeTasks]
    serializer_class = TaskOutput
    filter_backends: list = []

    def get_queryset(self):
        query = _TaskQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        tasks = task_queryset_for(self.request.user).select_related("client", "assignee")
        status = query.validated_data.get("status")
        if status and status != "all":
            tasks = tasks.filter(status=status)
        if "due_before" in query.validated_data:
            tasks = tasks.filter(due_on__lte=query.validated_data["due_before"])
        return tasks

    @extend_schema(summary="The caller's tasks: an RM's call list, a branch's, or all (ops)",
                   parameters=[_TaskQuery], responses={200: TaskOutput(many=True),
                                                       **errors(400, 401, 403, 404)})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["tasks"])
class TaskDetailView(APIView):
    permission_classes = [CanSeeTasks]

    @extend_schema(summary="One of the caller's tasks",
                   responses={200: TaskOutput, **errors(401, 403, 404)})
    def get(self, request: Request, pk: int) -> Response:
        return Response(TaskOutput(task_get(user=request.user, pk=pk)).data)

    @extend_schema(summary="Record what was done: status, outcome and note, due date, the next "
                           "follow-up",
                   request=TaskInput,
                   responses={200: TaskPatchOutput, **errors(400, 401, 403, 404)})
    def patch(self, request: Request, pk: int) -> Response:
        task = task_get(user=request.user, pk=pk)
        data = TaskInput(data=require_object(request.data))
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        follow_up_on = values.pop("follow_up_on", None)
        if follow_up_on is not None:
            values.setdefault("status", TaskStatus.DONE)
        with transaction.atomic():  # the outcome and its follow-up, or neither
            task = task_update(task=task, actor=request.user, **values)
            follow_up = (task_follow_up_create(task=task, actor=request.user,
                                               due_on=follow_up_on, note=values.get("note", ""))
                         if follow_up_on is not None else None)
        task.follow_up = follow_up
        return Response(TaskPatchOutput(task).data)


# --- contact policy --------------------------------------------------------------------------

class _Cap(serializers.Serializer):
    channel = serializers.CharField()
    max_contacts = serializers.IntegerField()
    window_days = serializers.IntegerField()


class _QuietHours(serializers.Serializer):
    start = serializers.CharField(help_text="HH:MM")
    end = serializers.CharField(help_text="HH:MM")
    channels = serializers.ListField(child=serializers.CharField())
    timezone = serializers.CharField(read_only=True)


class ContactPolicyDoc(serializers.Serializer):
    caps = _Cap(many=True)
    quiet_hours = _QuietHours()
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


@extend_schema(tags=["contact policy"])
class ContactPolicyView(APIView):
    permission_classes = [CanManagePolicy]

    @extend_schema(summary="The contact policy in force (caps per channel, quiet hours)",
                   responses={200: ContactPolicyDoc, **errors(401, 403)})
    def get(self, request: Request) -> Response:
        return Response(contact_policy_get())

    @extend_schema(summary="Replace the contact policy (validated whole, audited)",
                   request=ContactPolicyDoc,
                   responses={200: ContactPolicyDoc, **errors(400, 401, 403)})
    def put(self, request: Request) -> Response:
        return Response(contact_policy_set(data=require_object(request.data),
                                           actor=request.user))
