"""The projects page (``/``): every project of the workspace, by entity, with links to their runs and
artifacts. Registries (``wandb-registry-*`` projects) are listed on the registries pages instead."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wandb_dagster.app.templating import render
from wandb_dagster.sdk.names import is_registry_project

# A workspace has few projects next to its runs; more than this on one page is not a list anyone reads.
MAX_PROJECTS = 2000


def projects_page(request: Request) -> Response:
    api = request.app.state.api
    found = []
    for project in api.projects(all_entities=True, per_page=500):
        if not is_registry_project(project.name):
            found.append(project)
        if len(found) >= MAX_PROJECTS:
            break
    return render(request, "projects.html", {"projects": found, "limit": MAX_PROJECTS,
                                             "workspace": api._ws.display_url})


routes = [Route("/", projects_page, name="projects")]
