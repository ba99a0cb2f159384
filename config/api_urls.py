"""REST API v1 (docs/api.md). Resources are addressed by the core system's keys."""

from django.urls import path

from analytics.api import (
    ChannelsView,
    FunnelView,
    KpisView,
    NewslettersView,
    RetentionView,
)
from analytics.api import (
    RefreshDetailView as AnalyticsRefreshDetailView,
)
from analytics.api import (
    RefreshView as AnalyticsRefreshView,
)
from campaigns.api import (
    CampaignApproveView,
    CampaignCancelView,
    CampaignDetailView,
    CampaignLaunchView,
    CampaignListView,
    CampaignMembersView,
    CampaignOutcomesView,
    CampaignPauseView,
    CampaignRejectView,
    CampaignResultsView,
    CampaignResumeView,
    CampaignSubmitView,
)
from clients.api.cash_flows import CashFlowBulkView
from clients.api.clients import ClientDetailView, ClientListView
from clients.api.holdings import ClientHoldingsView, ClientTransactionsView
from clients.api.products import (
    BranchDetailView,
    ProductDetailView,
    ProductListView,
    TransactionBulkView,
)
from clients.api.scoring import (
    ClientScoresView,
    RunDetailView,
    RunListView,
    RunResumeView,
    SchemeListView,
)
from newsletters.api import (
    EditionApproveView,
    EditionCancelView,
    EditionDeliveriesView,
    EditionDetailView,
    EditionListView,
    EditionPauseView,
    EditionRejectView,
    EditionResumeView,
    EditionScheduleView,
    EditionSendView,
    EditionSubmitView,
    EditionTestSendView,
    PublicationDetailView,
    PublicationListView,
)
from outreach.api import ContactPolicyView, TaskDetailView, TaskListView, TradingDaysView
from segments.api import (
    RefreshDetailView,
    SegmentDetailView,
    SegmentListView,
    SegmentMembersView,
    SegmentPreviewView,
    SegmentRefreshView,
)

app_name = "api"
urlpatterns = [
    path("analytics/kpis/", KpisView.as_view(), name="analytics-kpis"),
    path("analytics/retention/", RetentionView.as_view(), name="analytics-retention"),
    path("analytics/funnel/", FunnelView.as_view(), name="analytics-funnel"),
    path("analytics/channels/", ChannelsView.as_view(), name="analytics-channels"),
    path("analytics/newsletters/", NewslettersView.as_view(), name="analytics-newsletters"),
    path("analytics/refresh/", AnalyticsRefreshView.as_view(), name="analytics-refresh"),
    path("analytics/refresh/<int:pk>/", AnalyticsRefreshDetailView.as_view(),
         name="analytics-refresh-detail"),
    path("branches/<str:code>/", BranchDetailView.as_view(), name="branch-detail"),
    path("calendar/trading-days/", TradingDaysView.as_view(), name="calendar-trading-days"),
    path("cash-flows/bulk/", CashFlowBulkView.as_view(), name="cash-flow-bulk"),
    path("contact-policy/", ContactPolicyView.as_view(), name="contact-policy"),
    path("campaigns/", CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<str:code>/", CampaignDetailView.as_view(), name="campaign-detail"),
    *[path(f"campaigns/<str:code>/{name}/", view.as_view(), name=f"campaign-{name}")
      for name, view in (("submit", CampaignSubmitView), ("approve", CampaignApproveView),
                         ("reject", CampaignRejectView), ("launch", CampaignLaunchView),
                         ("pause", CampaignPauseView), ("resume", CampaignResumeView),
                         ("cancel", CampaignCancelView), ("members", CampaignMembersView),
                         ("results", CampaignResultsView), ("outcomes", CampaignOutcomesView))],
    path("clients/", ClientListView.as_view(), name="client-list"),
    path("clients/<str:client_no>/", ClientDetailView.as_view(), name="client-detail"),
    path("clients/<str:client_no>/holdings/", ClientHoldingsView.as_view(),
         name="client-holdings"),
    path("clients/<str:client_no>/transactions/", ClientTransactionsView.as_view(),
         name="client-transactions"),
    path("clients/<str:client_no>/scores/", ClientScoresView.as_view(), name="client-scores"),
    path("scoring/runs/", RunListView.as_view(), name="scoring-run-list"),
    path("scoring/runs/<int:pk>/", RunDetailView.as_view(), name="scoring-run-detail"),
    path("scoring/runs/<int:pk>/resume/", RunResumeView.as_view(), name="scoring-run-resume"),
    path("scoring/schemes/", SchemeListView.as_view(), name="scoring-scheme-list"),
    path("publications/", PublicationListView.as_view(), name="publication-list"),
    path("publications/<int:pk>/", PublicationDetailView.as_view(), name="publication-detail"),
    path("editions/", EditionListView.as_view(), name="edition-list"),
    path("editions/<int:pk>/", EditionDetailView.as_view(), name="edition-detail"),
    path("editions/<int:pk>/submit/", EditionSubmitView.as_view(), name="edition-submit"),
    path("editions/<int:pk>/approve/", EditionApproveView.as_view(), name="edition-approve"),
    path("editions/<int:pk>/reject/", EditionRejectView.as_view(), name="edition-reject"),
    path("editions/<int:pk>/schedule/", EditionScheduleView.as_view(), name="edition-schedule"),
    path("editions/<int:pk>/send/", EditionSendView.as_view(), name="edition-send"),
    path("editions/<int:pk>/pause/", EditionPauseView.as_view(), name="edition-pause"),
    path("editions/<int:pk>/resume/", EditionResumeView.as_view(), name="edition-resume"),
    path("editions/<int:pk>/cancel/", EditionCancelView.as_view(), name="edition-cancel"),
    path("editions/<int:pk>/test/", EditionTestSendView.as_view(), name="edition-test"),
    path("editions/<int:pk>/deliveries/", EditionDeliveriesView.as_view(),
         name="edition-deliveries"),
    path("products/", ProductListView.as_view(), name="product-list"),
    path("products/<str:product_code>/", ProductDetailView.as_view(), name="product-detail"),
    path("segments/", SegmentListView.as_view(), name="segment-list"),
    path("tasks/", TaskListView.as_view(), name="task-list"),
    path("tasks/<int:pk>/", TaskDetailView.as_view(), name="task-detail"),
    path("segments/preview/", SegmentPreviewView.as_view(), name="segment-preview"),
    path("segments/refreshes/<int:pk>/", RefreshDetailView.as_view(),
         name="segment-refresh-detail"),
    path("segments/<str:code>/", SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<str:code>/refresh/", SegmentRefreshView.as_view(), name="segment-refresh"),
    path("segments/<str:code>/members/", SegmentMembersView.as_view(), name="segment-members"),
    path("transactions/bulk/", TransactionBulkView.as_view(), name="transaction-bulk"),
]
