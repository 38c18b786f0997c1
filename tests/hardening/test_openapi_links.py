"""The schema links list and create responses to their item routes (issue 13 item 13), so a
stateful client reaches runs, node runs, data sources and versions with real ids."""

from drf_spectacular.generators import SchemaGenerator


def links_of(schema, path, method, code):
    return schema["paths"][path][method]["responses"][code].get("links", {})


def targets(links):
    return {link["operationId"]: link["parameters"] for link in links.values()}


def test_list_and_create_responses_link_to_item_routes():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    # Runs: created under a flow, read and acted on under /runs/.
    created = targets(links_of(schema, "/api/v1/flows/{flow_id}/runs/", "post", "201"))
    assert created["v1_runs_retrieve"] == {"id": "$response.body#/id"}
    assert {"v1_runs_stop_create", "v1_runs_rerun_create"} <= set(created)
    listed = targets(links_of(schema, "/api/v1/runs/", "get", "200"))
    assert listed["v1_runs_retrieve"] == {"id": "$response.body#/results/0/id"}
    # Node runs: from a run's detail.
    run = targets(links_of(schema, "/api/v1/runs/{id}/", "get", "200"))
    assert run["v1_node_runs_log_retrieve"] == {"id": "$response.body#/node_runs/0/id"}
    assert "v1_node_runs_mark_success_create" in run
    # Data sources: list and create.
    for method, code, pointer in (("get", "200", "/results/0/id"), ("post", "201", "/id")):
        found = targets(links_of(schema, "/api/v1/datasources/", method, code))
        assert found["v1_datasources_test_create"] == {"id": f"$response.body#{pointer}"}
    # Versions: by number, the flow from the request's own path.
    versions = targets(links_of(schema, "/api/v1/flows/{flow_id}/versions/", "get", "200"))
    assert versions["v1_flows_versions_diff_retrieve"] == {
        "flow_id": "$request.path.flow_id",
        "number": "$response.body#/results/0/number",
    }
