"""The pages of issues 21 and 22 against the REAL service (docs/reference.md sections 10 and
12): a promise's page listing its requests with their delivery, filtered and paged; a
request's delivery per destination, from Flux's signed events (tests/flux.py); what a
pending request waits for; the search by object, with a shared CRD's two owners; the
history filtered by action (rollback, revert); error pages in the layout with the
navigation; the time column at 1280 px and at a narrow width; hostile query strings.

The screenshots docs/ui.md shows are taken here (tests/browser.py: into the folder
STATEWRITER_SCREENSHOTS names, else a temporary one)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from app.eck import CRD_NAMES
from app.web.render import ENVIRONMENT
from gitops.delivery.status import Delivery
from gitops.revert import revert
from gitops.store import EmbeddedStore
from gitops.store.base import Author
from tests.browser import (
    Shots,
    browser,
    heading,
    overflowing,
    row_of,
    shoot,
    shoot_for_docs,
    shots,
    sign_in,
    wait,
)
from tests.conftest import Service
from tests.fixtures.eck import request_files
from tests.flux import Flux
from tests.procs import Server, running_server
from tests.support import config_map

__all__ = ["browser", "shots"]  # the fixtures of tests/browser.py this module uses

PIPELINE, ADMIN = "s3cret", "adm1n"
CONFIG = """
auth:
  tokens:
    - {name: pipeline, token: s3cret, promises: [elastic-cloud]}
    - {name: admin, token: adm1n, promises: ["*"], destinations: true}
delivery:
  hmacTokenFile: KEY
"""
FAST = {"gitops.writer.Writer": {"max_staleness": 0.2},
        "gitops.delivery.book.DeliveryBook": {"max_staleness": 0.2}}
PROMISE = "elastic-cloud"
DEV, PROD = "worker-cluster-1", "worker-cluster-2"
DEPENDENCIES, RESOURCES = "kratix-workload-dependencies", "kratix-workload-resources"
CRD = f"elasticsearches.{CRD_NAMES['elasticsearches'][0]}"
FAILURE = ('Elasticsearch/default/second-request dry-run failed (Invalid): Elasticsearch.'
           'elasticsearch.k8s.elastic.co "second-request" is invalid: spec.version: Required value')


@dataclass
class World:
    service: Service  # admin's bearer token by default
    server: Server
    commits: dict[str, str]


def post(service: Service, ref: str, files: dict[str, str], expect: int = 200,
         selectors: dict[str, str] | None = None, promise: str = PROMISE,
         token: str = PIPELINE) -> str | None:
    body: dict[str, Any] = {"promise": promise, "files": files,
                            "destinationSelectors": selectors or {"env": "dev"}}
    if ref:
        namespace, _, name = ref.partition("/")
        body["request"] = {"namespace": namespace, "name": name}
    answer = service.call("POST", "/v1/bundles", token, json=body)
    assert answer.status_code == expect, answer.text
    commit: str | None = answer.json().get("commit")
    return commit


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Two destinations; elastic-cloud's default/example (changed, then rolled back: Applied),
    default/second-request (sharing its CRDs: Failed), team-a/analytics (on the other
    destination: Pending), team-b/logs (no destination matches: waits for env=qa); a
    promise-level bundle of promise monitoring; a destination added and reverted."""
    root = tmp_path_factory.mktemp("ui-delivery")
    (root / "key").write_text("delivery-key-for-the-ui-tests\n")
    config = CONFIG.replace("KEY", str(root / "key"))
    with running_server(root / "data", config_yaml=config, keywords=FAST,
                        ready_path="/healthz") as server:
        service = Service.of(server, ADMIN)
        for name, labels in ((DEV, {"env": "dev", "region": "eu-west-1"}),
                             (PROD, {"env": "prod", "region": "eu-west-1"})):
            answer = service.call("PUT", f"/v1/destinations/{name}", json={"labels": labels})
            assert answer.status_code == 200, answer.text
        commits: dict[str, str] = {}
        first = post(service, "default/example", request_files("example"))
        assert first is not None
        post(service, "default/example", {**request_files("example"),
                                          "settings.yaml": config_map("example-settings", "default")})
        rolled = service.call("POST", f"/v1/promises/{PROMISE}/requests/default/example/rollback",
                              PIPELINE, json={"commit": first})
        assert rolled.status_code == 200, rolled.text
        commits["example"] = rolled.json()["commit"]
        commits["second"] = post(service, "default/second-request",
                                 request_files("second-request")) or ""
        commits["analytics"] = post(service, "team-a/analytics", request_files("analytics"),
                                    selectors={"env": "prod"}) or ""
        post(service, "team-b/logs", {"cm.yaml": config_map("logs", "team-b")}, 202,
             selectors={"env": "qa", "tier": "logging"})
        # a destination added by mistake, and the commit that added it reverted on the
        # store (as `statewriter revert` does); the next write builds on the revert
        scratch = service.call("PUT", "/v1/destinations/scratch", json={"labels": {"env": "x"}})
        assert scratch.status_code == 200, scratch.text
        reverted = revert(EmbeddedStore(server.data / "state.git"), scratch.json()["commit"],
                          Author("operator", "operator@example.invalid"), "operator")
        commits["revert"] = reverted.commit
        post(service, "", {"cm.yaml": config_map("dashboards", "monitoring")}, token=ADMIN,
             promise="monitoring")
        # Flux on the dev worker: the dependencies apply the newest commit; the resources
        # apply the rolled-back example, then fail on second-request's commit
        flux = Flux(server, DEV, ADMIN)
        flux.applied(DEPENDENCIES, commits["second"])
        flux.applied(RESOURCES, commits["example"])
        flux.failed(RESOURCES, commits["second"], FAILURE)
        yield World(service, server, commits)
        service.close()


def page(world: World, path: str, **params: str) -> httpx.Response:
    return world.service.call("GET", path, params=params)


# -- the promise's page -----------------------------------------------------------------------


def test_a_promise_with_requests_only_has_a_page_listing_them_with_their_delivery(
        browser: WebDriver, world: World, shots: Shots) -> None:
    sign_in(browser, world.service.url, ADMIN)
    browser.get(f"{world.service.url}/ui/promises/{PROMISE}")
    heading(browser, PROMISE)
    table = browser.find_element(By.CSS_SELECTOR, "table.promise-requests")
    rows = [[td.text for td in row.find_elements(By.TAG_NAME, "td")]
            for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("default/example", "Scheduled", "Applied"),
        ("default/second-request", "Scheduled", "Failed"),
        ("team-a/analytics", "Scheduled", "Pending"),
        ("team-b/logs", "Pending", "Pending")]
    assert f"{DEV} Applied" in rows[0][4]
    assert f"{DEV} Failed" in rows[1][4] and "ReconciliationFailed" in rows[1][4]
    assert "Elasticsearch/default/second-request" in rows[1][4]  # the object Flux names
    assert f"{PROD} Pending" in rows[2][4]
    assert "placed on no destination yet" in rows[3][4]
    assert "<dt>Promise-level bundles</dt><dd>none</dd>" in browser.page_source
    shoot_for_docs(browser, shots, "promise")
    row_of(table, "default/second-request").find_element(By.LINK_TEXT, "default/second-request").click()
    heading(browser, "default/second-request")


def test_the_promise_page_filters_like_the_api(browser: WebDriver, world: World) -> None:
    sign_in(browser, world.service.url, ADMIN)
    browser.get(f"{world.service.url}/ui/promises/{PROMISE}")
    heading(browser, PROMISE)
    Select(browser.find_element(By.NAME, "state")).select_by_visible_text("Failed")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait(browser).until(lambda driver: "state=Failed" in driver.current_url)
    first_cells = "table.promise-requests tbody td:first-child a"
    listed = [a.text for a in browser.find_elements(By.CSS_SELECTOR, first_cells)]
    assert listed == ["default/second-request"]
    assert Select(browser.find_element(By.NAME, "state")).first_selected_option.text == "Failed"
    for params, expected in (({"destination": PROD}, ["team-a/analytics"]),
                             ({"namespace": "team-b"}, ["team-b/logs"]),
                             ({"namespace": "default", "state": "Applied"}, ["default/example"]),
                             ({"state": "Unknown"}, [])):
        text = page(world, f"/ui/promises/{PROMISE}", **params).text
        api = world.service.call("GET", f"/v1/promises/{PROMISE}/requests", params=params).json()
        assert [r["request"] for r in api["requests"]] == expected  # the same read
        for ref in ("default/example", "default/second-request", "team-a/analytics", "team-b/logs"):
            assert (f">{ref}</a>" in text) == (ref in expected), (params, ref)


def test_the_promise_page_pages_with_the_apis_cursor(world: World) -> None:
    seen: list[str] = []
    answer = page(world, f"/ui/promises/{PROMISE}", limit="1")
    for _ in range(10):
        assert answer.status_code == 200, answer.text
        seen += [ref for ref in ("default/example", "default/second-request", "team-a/analytics",
                                 "team-b/logs") if f">{ref}</a>" in answer.text]
        following = [part.split('"')[0] for part in answer.text.split('class="next" href="')[1:]]
        if not following:
            break
        assert "limit=1" in following[0] and "cursor=" in following[0]
        answer = world.service.call("GET", following[0].replace("&amp;", "&"))
        assert 'class="first"' in answer.text  # the way back to the first page
    assert seen == ["default/example", "default/second-request", "team-a/analytics", "team-b/logs"]


def test_a_promise_with_promise_level_bundles_only_has_a_page(world: World) -> None:
    answer = page(world, "/ui/promises/monitoring")
    assert answer.status_code == 200
    assert 'id="promise-level"' in answer.text and "This promise has no requests." in answer.text
    assert "ConfigMap" in answer.text and "dashboards" in answer.text
    assert page(world, "/ui/promises/nothing-here").status_code == 404


# -- a request's delivery ---------------------------------------------------------------------


def test_a_failed_request_shows_fluxs_reason_message_and_object(browser: WebDriver, world: World,
                                                                 shots: Shots) -> None:
    sign_in(browser, world.service.url, ADMIN)
    browser.get(f"{world.service.url}/ui/promises/{PROMISE}/requests/default/second-request")
    heading(browser, "default/second-request")
    assert "Failed" in browser.find_element(By.CSS_SELECTOR, "dd.delivery-state").text
    table = browser.find_element(By.CSS_SELECTOR, "table.delivery")
    cells = [td.text for td in row_of(table, DEV).find_elements(By.TAG_NAME, "td")]
    assert cells[0] == DEV and cells[1] == "Failed"
    assert cells[2] == world.commits["second"][:12]
    assert "ReconciliationFailed" in cells[5] and RESOURCES in cells[5]
    assert "Elasticsearch/default/second-request" in cells[5]
    assert "spec.version: Required value" in browser.find_element(By.CSS_SELECTOR, "pre.flux-message").text
    shoot_for_docs(browser, shots, "request")


def test_an_applied_request_and_a_pending_one(world: World) -> None:
    applied = page(world, f"/ui/promises/{PROMISE}/requests/default/example").text
    delivery = applied[applied.index('<table class="grid delivery">'):]
    delivery = delivery[:delivery.index("</table>")]
    assert ">Applied</span>" in delivery and world.commits["example"][:12] in delivery
    pending = page(world, f"/ui/promises/{PROMISE}/requests/team-a/analytics").text
    delivery = pending[pending.index('<table class="grid delivery">'):]
    delivery = delivery[:delivery.index("</table>")]
    (api,) = world.service.call("GET", f"/v1/promises/{PROMISE}/requests/team-a/analytics"
                                ).json()["delivery"]["destinations"]  # the same read
    assert api["state"] == "Pending" and ">Pending</span>" in delivery
    assert f">{PROD}</a>" in delivery and api["commit"][:12] in delivery
    assert (f"waits for {api['kustomization']}" if api["kustomization"]
            else "not reported yet") in delivery


def test_without_events_configured_the_delivery_is_unknown(tmp_path: Any) -> None:
    with running_server(tmp_path / "data") as server:
        service = Service.of(server)
        assert service.call("PUT", f"/v1/destinations/{DEV}",
                            json={"labels": {"env": "dev"}}).status_code == 200
        post(service, "team-a/plain", {"cm.yaml": config_map("plain", "team-a")}, token="")
        answer = service.call("GET", f"/ui/promises/{PROMISE}/requests/team-a/plain")
        assert answer.status_code == 200, answer.text
        text = answer.text
        assert ">Unknown</span>" in text and "Flux's events are not configured" in text
        service.close()


def test_an_overdue_delivery_says_so() -> None:
    """What the request page prints for a commit Flux should have applied by now (the
    delivery read decides `overdue` from the commit's time; no test waits minutes for it)."""
    macros = ENVIRONMENT.get_template("_macros.html").module
    late = Delivery(DEV, "Pending", "a" * 40, None, kustomization=RESOURCES, overdue=True)
    text = str(macros.delivery(late))  # type: ignore[attr-defined]
    assert ">Pending</span>" in text and ">overdue</span>" in text
    assert ">overdue<" not in str(macros.delivery(Delivery(DEV, "Pending", "a" * 40, None)))  # type: ignore[attr-defined]


def test_a_pending_request_shows_the_selectors_it_waits_for(browser: WebDriver, world: World) -> None:
    sign_in(browser, world.service.url, ADMIN)
    browser.get(f"{world.service.url}/ui/promises/{PROMISE}/requests/team-b/logs")
    heading(browser, "team-b/logs")
    waiting = browser.find_element(By.ID, "waiting").text
    assert "pipeline default waits for" in waiting
    assert "env\nqa" in waiting or "envqa" in waiting.replace(" ", "")
    assert "tier" in waiting and "logging" in waiting
    browser.get(f"{world.service.url}/ui")
    pending = row_of(browser.find_element(By.CSS_SELECTOR, "table.pending"), "team-b/logs")
    assert "qa" in pending.find_element(By.CSS_SELECTOR, "td.waits-for").text
    assert "logging" in pending.find_element(By.CSS_SELECTOR, "td.waits-for").text


# -- the search -------------------------------------------------------------------------------


def test_the_index_searches_an_object_and_finds_both_owners_of_a_shared_crd(
        browser: WebDriver, world: World, shots: Shots) -> None:
    sign_in(browser, world.service.url, ADMIN)
    browser.get(f"{world.service.url}/ui")
    heading(browser, "Destinations")
    shoot_for_docs(browser, shots, "index")
    form = browser.find_element(By.CSS_SELECTOR, "form.search-form")
    form.find_element(By.NAME, "kind").send_keys("customresourcedefinition")  # any case
    form.find_element(By.NAME, "name").send_keys(CRD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    heading(browser, "Find an object")
    table = browser.find_element(By.CSS_SELECTOR, "table.search")
    rows = {r.find_elements(By.TAG_NAME, "td")[1].text: r
            for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert sorted(rows) == [DEV, PROD]  # analytics, on the other destination, outputs it too
    row = rows[DEV]
    assert CRD in row.text and "shared by 2" in row.text
    assert [a.text for a in rows[PROD].find_elements(By.CSS_SELECTOR, "a.owner")] == ["team-a/analytics"]
    owners = {a.text: a.get_attribute("href") for a in row.find_elements(By.CSS_SELECTOR, "a.owner")}
    base = f"{world.service.url}/ui/promises/{PROMISE}/requests/default"
    assert owners == {"default/example": f"{base}/example",
                      "default/second-request": f"{base}/second-request"}
    assert browser.find_element(By.NAME, "name").get_attribute("value") == CRD  # kept in the form
    shoot_for_docs(browser, shots, "search")
    row.find_element(By.LINK_TEXT, "default/example").click()
    heading(browser, "default/example")


def test_the_search_by_kind_and_namespace(world: World) -> None:
    found = page(world, "/ui/search", kind="Elasticsearch.elasticsearch.k8s.elastic.co",
                 name="analytics", namespace="team-a")
    assert found.status_code == 200 and f"{PROD}</a>" in found.text
    assert ">team-a/analytics</a>" in found.text
    kinds = page(world, "/ui/search", kind="Elasticsearch")
    assert kinds.text.count('class="grid search"') == 1
    for name in ("example", "second-request", "analytics"):
        assert f">default/{name}</a>" in kinds.text or f">team-a/{name}</a>" in kinds.text
    nothing = page(world, "/ui/search", kind="Kibana", name="nobody")
    assert "No stored object is a Kibana named nobody" in nothing.text
    assert page(world, "/ui/search").status_code == 200  # the form alone


@pytest.mark.parametrize(("params", "field"), [
    ({"name": "<script>alert(1)</script>"}, "name"),
    ({"kind": "<img src=x onerror=alert(1)>"}, "kind"),
    ({"kind": "K" * 5000}, "kind"),
    ({"name": "x" * 300}, "name"),
    ({"namespace": "Team A", "name": "x"}, "namespace"),
    ({"namespace": "team-a"}, "name"),
])
def test_search_terms_that_name_no_object_are_a_clear_422(world: World, params: dict[str, str],
                                                          field: str) -> None:
    answer = page(world, "/ui/search", **params)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    assert f"{field} " in answer.text  # the message names the term
    assert "<script>alert" not in answer.text and "<img src=x" not in answer.text
    assert 'aria-label="Sections"' in answer.text  # the navigation is still there


def test_terms_and_filters_with_html_are_shown_as_text(world: World) -> None:
    answer = page(world, "/ui/search", name="<b>x", kind="ConfigMap")
    assert answer.status_code == 200
    assert "named &lt;b&gt;x" in answer.text and "<b>x" not in answer.text
    assert 'value="&lt;b&gt;x"' in answer.text
    listing = page(world, f"/ui/promises/{PROMISE}", destination="<script>x</script>" * 200)
    assert listing.status_code == 200  # a destination no request is on, as the API takes it
    assert "No request of this promise matches these filters." in listing.text
    assert "<script>x" not in listing.text
    unknown = page(world, "/ui/promises/" + quote("<i>" + "p" * 4000, safe=""))
    assert unknown.status_code == 404 and "<i>" not in unknown.text and "&lt;i&gt;" in unknown.text


# -- history, errors, layout ------------------------------------------------------------------


def test_history_filters_by_action_rollback_and_revert(browser: WebDriver, world: World,
                                                       shots: Shots) -> None:
    sign_in(browser, world.service.url, ADMIN)
    browser.get(f"{world.service.url}/ui/promises/{PROMISE}/requests/default/example")
    heading(browser, "default/example")
    options = [o.text for o in Select(browser.find_element(By.NAME, "action")).options]
    assert options == ["any", "apply", "delete", "rollback", "revert", "destination", "migrate"]
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")) == 3
    Select(browser.find_element(By.NAME, "action")).select_by_visible_text("rollback")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait(browser).until(lambda driver: "action=rollback" in driver.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, ".badge.action").text for r in rows] == ["rollback"]
    assert rows[0].find_element(By.CSS_SELECTOR, "a.sha").text == world.commits["example"][:12]
    rows[0].find_element(By.CSS_SELECTOR, "a.sha").click()
    heading(browser, "rollback")
    shoot_for_docs(browser, shots, "commit")

    browser.get(f"{world.service.url}/ui/history?action=revert")
    heading(browser, "History")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    assert len(rows) == 1 and rows[0].find_element(By.CSS_SELECTOR, "a.sha").text == \
        world.commits["revert"][:12]
    assert "revert" in rows[0].text
    shoot(browser, shots.folder, "history-revert")
    applies = page(world, "/ui/history", action="apply", promise=PROMISE).text
    assert applies.count('class="badge action">apply<') >= 4
    assert 'class="badge action">rollback<' not in applies


@pytest.mark.parametrize("path", [
    f"/ui/promises/{PROMISE}/requests/default/example?action=%3Cb%3Eboom",
    "/ui/history?action=bogus",
    f"/ui/promises/{PROMISE}?state=Done",
    f"/ui/promises/{PROMISE}?limit=0",
    f"/ui/promises/{PROMISE}?cursor=!!",
    f"/ui/promises/{PROMISE}?namespace=%3Cscript%3E",
])
def test_unusable_filters_are_a_clear_422(world: World, path: str) -> None:
    answer = world.service.call("GET", path)
    assert answer.status_code == 422, path
    assert "<b>boom" not in answer.text and "<script>" not in answer.text
    field = path.rpartition("?")[2].partition("=")[0]
    assert field in answer.text


def test_error_pages_keep_the_navigation_and_who_is_signed_in(browser: WebDriver,
                                                             world: World) -> None:
    sign_in(browser, world.service.url, ADMIN)
    for path in ("/ui/destinations/nowhere", f"/ui/promises/{PROMISE}/requests/default/nobody",
                 "/ui/commits/0123456789abcdef0123456789abcdef01234567"):
        browser.get(f"{world.service.url}{path}")
        heading(browser, "Not found")
        nav = browser.find_element(By.CSS_SELECTOR, "nav.nav")
        assert [a.text for a in nav.find_elements(By.TAG_NAME, "a")] == [
            "Destinations", "History", "Find an object", "Refused bundles", "API docs"]
        assert "Signed in as admin" in browser.find_element(By.CSS_SELECTOR, ".signout").text
    anonymous = world.service.call("GET", "/ui/destinations/nowhere", token="not-a-token")
    assert anonymous.status_code == 401
    assert 'aria-label="Sections"' in anonymous.text and "Signed in as" not in anonymous.text


def test_an_address_under_ui_that_no_page_serves_is_the_pages_404(world: World) -> None:
    for path in ("/ui/nowhere", "/ui/promises/a/b/c/d/e/f", "/ui/%3Cscript%3E"):
        answer = world.service.call("GET", path, token="not-a-token")
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        assert 'aria-label="Sections"' in answer.text and "Not found" in answer.text
        assert "<script>" not in answer.text
        assert answer.headers["X-Frame-Options"] == "DENY"
    api = world.service.call("GET", "/v1/nowhere")  # a client's wrong URL stays JSON
    assert api.status_code == 404 and api.json()["error"] == "RouteNotFound"


@pytest.mark.parametrize("width", [1280, 480])
def test_times_stay_inside_their_column(browser: WebDriver, world: World, shots: Shots,
                                        width: int) -> None:
    sign_in(browser, world.service.url, ADMIN)
    browser.set_window_size(width, 900)
    try:
        for name, path in (("request", f"/ui/promises/{PROMISE}/requests/default/example"),
                           ("history", "/ui/history")):
            browser.get(f"{world.service.url}{path}")
            assert browser.find_elements(By.CSS_SELECTOR, "td.time"), path
            assert overflowing(browser, "td.time") == [], (width, path)
            assert browser.save_screenshot(str(shots.folder / f"{name}-{width}px.png"))
    finally:
        browser.set_window_size(1366, 900)


def test_every_new_page_answers_with_the_pages_headers(world: World) -> None:
    for path in (f"/ui/promises/{PROMISE}", "/ui/search?kind=Kibana", "/ui/history",
                 f"/ui/promises/{quote(PROMISE)}/requests/team-b/logs"):
        answer = page(world, path)
        assert answer.status_code == 200, path
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "<script" not in answer.text
        without = world.service.call("GET", path, token=None)
        assert without.status_code == 303 and without.headers["location"].startswith("/ui/login?next=")
