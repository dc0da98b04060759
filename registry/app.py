"""The registry's Litestar application, built from one settings object."""

from __future__ import annotations

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from prometheus_client import CollectorRegistry

from registry import limits, ops
from registry.accounts.routes import ROUTES as ACCOUNT_ROUTES
from registry.context import Registry, provide_principal, provide_registry
from registry.db import make_engine
from registry.embeddings.routes import ROUTES as EMBEDDING_ROUTES
from registry.openapi import ProblemDocumentedJson
from registry.problems import EXCEPTION_HANDLERS
from registry.rate_limits import rate_limit_middleware
from registry.settings import Settings
from registry.similarity.index import warm_in_background
from registry.similarity.routes import ROUTES as SIMILARITY_ROUTES
from registry.storage import blob_store_from_settings
from registry.training.routes import ROUTES as TRAINING_ROUTES
from registry.validation import refuse_nul_bytes
from registry.web.setup import template_config, web_router


def build_registry(settings: Settings) -> Registry:
    """Engine, blob store and metrics for ``settings`` (also used by the CLI)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Registry(
        settings=settings,
        engine=make_engine(settings.resolved_database_url),
        store=blob_store_from_settings(settings),
        metrics=CollectorRegistry(),
    )


def create_app(settings: Settings | None = None) -> Litestar:
    registry = build_registry(settings or Settings())
    ops.configure_logging(registry.settings.log_level)
    app = Litestar(
        route_handlers=[
            *EMBEDDING_ROUTES,
            *ACCOUNT_ROUTES,
            *TRAINING_ROUTES,
            *SIMILARITY_ROUTES,
            web_router(registry.settings),
            ops.healthz,
            ops.readyz,
            ops.metrics,
        ],
        dependencies={
            "registry": Provide(provide_registry, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=template_config(),
        before_request=refuse_nul_bytes,
        # Outermost first: request id and log; caller and body metering; rate limits; then the
        # token and size checks that refuse a body before it is read (registry/limits.py).
        middleware=[
            ops.request_middleware,
            limits.request_guard,
            *rate_limit_middleware(registry.settings),
            limits.body_gate,
        ],
        openapi_config=OpenAPIConfig(
            title="Lexicon Hub registry",
            version="1",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(path="/"), ProblemDocumentedJson()],
        ),
        # A backstop; each route's own cap is enforced earlier, by registry/limits.py.
        request_max_body_size=limits.largest_body(registry.settings),
        on_startup=[lambda: warm_in_background(registry.engine)],
        on_shutdown=[lambda: registry.engine.dispose()],
    )
    app.state.registry = registry
    app.state.request_metrics = ops.RequestMetrics(registry.metrics)
    return app
