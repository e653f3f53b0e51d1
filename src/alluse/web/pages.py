"""The web dashboard: server-rendered pages (Jinja2) over the same services the API calls.

Pages live under `/p/<portfolio>/…` (the API owns `/portfolios/…`); `/` sends a logged-in user to
their portfolio. Every page checks the caller's role on the portfolio the way the API does; every
form posts with a CSRF token; an action the caller's role may not take is not offered and is refused
(403) if posted anyway. Scripts and styles are static files (no inline script or style), so the
pages run under a Content-Security-Policy without 'unsafe-inline'.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from functools import wraps
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as FPath
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from alluse import charts
from alluse.api.deps import login_keys
from alluse.brokers.ibkr import MAX_BYTES
from alluse.domain.errors import AlluseError, InvalidInput, Unauthenticated
from alluse.domain.money import format_usd
from alluse.domain.parsing import parse_money
from alluse.services import access, dashboard, lifecycle, protocol, reports
from alluse.services.statements import import_statement, reconcile_statement
from alluse.services.trades import Fill, FillAction, record_fills
from alluse.views import lifecycle as lifecycle_view
from alluse.views.access import Role, token_version, visible_portfolios
from alluse.web import session
from alluse.web.session import CSRF_FIELD, PageScope, check_csrf, csrf_token, portfolio_scope, remember_csrf
from alluse.web.tree import layout

router = APIRouter(include_in_schema=False)
MAX_REPORT_DAYS = 366
STATUS = {"Unauthenticated": 401, "Forbidden": 403, "CsrfRefused": 403, "NotFound": 404, "Conflict": 409,
          "IntegrityFailure": 409, "RuleViolation": 422, "TooManyAttempts": 429}  # fmt: skip


# --- rendering -----------------------------------------------------------------------------------


def usd(cents: int | None) -> str:
    return "" if cents is None else format_usd(int(cents)).replace("-", "\u2212")


def pct_bps(bps: int) -> str:
    return f"{bps / 100:g} %"


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("alluse.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_env.filters["usd"] = usd
_env.filters["bps"] = pct_bps
_env.filters["q"] = lambda s: quote(str(s), safe="")


def render(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    values.setdefault("active", None)
    html = _env.get_template(template).render(
        request=request, csrf=Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf_token(request)}">'),
        Role=Role, **values,
    )  # fmt: skip
    body = html.encode()
    headers = {"Cache-Control": "no-store", "Vary": "Accept-Encoding"}
    if len(body) > 1400 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, 5)
        headers["Content-Encoding"] = "gzip"
    response = Response(body, status, media_type="text/html; charset=utf-8", headers=headers)
    remember_csrf(request, response)
    return response


def page(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Errors a user can cause become an HTML page with the right status (or the login page)."""

    @wraps(fn)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return fn(request, *args, **kwargs)
        except Unauthenticated as exc:
            if request.method == "GET":
                return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", 303)
            return render(request, "error.html", 401, title="Log in", message=str(exc), scope=None)
        except AlluseError as exc:
            status = STATUS.get(type(exc).__name__, 400)
            return render(request, "error.html", status, title=f"Error {status}", message=str(exc), scope=None)

    return wrapper


def _redirect(url: str) -> Response:
    return RedirectResponse(url, 303)


def _day(text: str | None, field: str, default: date) -> date:
    if not text:
        return default
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{field}: expected a date as YYYY-MM-DD, got {text!r}") from None


Csrf = Annotated[str | None, Form(alias=CSRF_FIELD)]


# --- logging in ----------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query parameter
    return render(request, "login.html", next=_safe_next(next), error=None, scope=None)


@router.post("/login")
def login(
    request: Request,
    csrf: Csrf = None,
    username: Annotated[str, Form(max_length=50)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=300)] = "/",  # noqa: A002
) -> Response:
    c = session.ctx(request)
    try:
        check_csrf(request, csrf)
        # The API's throttle, counted in the database: the same budget for both doors.
        user_key, client_key = login_keys(username, request)
        c.throttle.attempt(user_key, client_key)
        who = access.login(c.engine, username, password)
        c.throttle.succeeded(user_key, client_key)
    except AlluseError as exc:
        status = STATUS.get(type(exc).__name__, 401)
        return render(request, "login.html", status, next=_safe_next(next), error=str(exc), scope=None)
    with c.engine.connect() as conn:
        version = token_version(conn, who.id)
    response = _redirect(_safe_next(next))
    session.set_session(request, response, session.issue(c, who.id, version))
    return response


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no host, no `//`), so the login is no open redirect."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


@router.post("/logout")
@page
def logout(request: Request, csrf: Csrf = None) -> Response:
    check_csrf(request, csrf)
    response = _redirect("/login")
    session.clear_session(response)
    return response


@router.get("/")
@page
def home(request: Request) -> Response:
    who = session.current_user(request)
    mine = visible_portfolios(session.ctx(request).engine, who)
    if len(mine) == 1:
        return _redirect(f"/p/{quote(mine[0]['name'], safe='')}/")
    return render(request, "portfolios.html", portfolios=mine, who=who, scope=None)


# --- pages of one portfolio ----------------------------------------------------------------------


@router.get("/p/{portfolio}/")
@page
def overview(request: Request, portfolio: str, page: Annotated[int, Query(ge=1, le=10**6)] = 1) -> Response:
    scope = portfolio_scope(request, portfolio)
    data = dashboard.overview(session.ctx(request).engine, scope.portfolio_id, page=page)
    return render(request, "overview.html", scope=scope, o=data, active="overview")


@router.get("/p/{portfolio}/accounts/{account}")
@page
def account(
    request: Request,
    portfolio: str,
    account: str,
    page: Annotated[int, Query(ge=1, le=10**6)] = 1,
    per: Annotated[int, Query(ge=10, le=200)] = dashboard.JOURNAL_PAGE,
) -> Response:
    scope = portfolio_scope(request, portfolio)
    return _account(request, scope, account, page, per)


def _account(
    request: Request, scope: PageScope, account: str, page_no: int = 1, per: int = dashboard.JOURNAL_PAGE, **extra: Any
) -> Response:
    engine = session.ctx(request).engine
    data = dashboard.account_page(engine, scope.portfolio_id, account, page_no, per_page=per)
    values = {"check": None, "check_error": None, "fill_result": None, "fill_error": None, "form": {}} | extra
    return render(
        request, "account.html", extra.pop("status", 200), scope=scope, a=data, active="overview", per=per,
        fill_key=f"web-{uuid.uuid4()}", today=date.today().isoformat(), **{k: v for k, v in values.items() if k != "status"},
    )  # fmt: skip


@router.get("/p/{portfolio}/accounts/{account}/lots/{lot_id}")
@page
def lot(request: Request, portfolio: str, account: str, lot_id: Annotated[int, FPath(ge=1, le=2**62)]) -> Response:
    scope = portfolio_scope(request, portfolio)
    engine = session.ctx(request).engine
    data = dashboard.account_page(engine, scope.portfolio_id, account, 1)
    found = next((row for row in data["holdings"]["lots"] if row["lot_id"] == lot_id), None)
    if found is None:
        return render(
            request,
            "error.html",
            404,
            title="No such lot",
            message=f"no open lot #{lot_id} in {data['name']}",
            scope=scope,
        )
    history = dashboard.lot_history(engine, scope.portfolio_id, data["account_id"], lot_id)
    return render(request, "lot.html", scope=scope, a=data, lot=found, history=history, active="overview")


@router.post("/p/{portfolio}/accounts/{account}/check")
@page
def check_trade(
    request: Request,
    portfolio: str,
    account: str,
    csrf: Csrf = None,
    action: Annotated[str, Form(max_length=10)] = "",
    symbol: Annotated[str, Form(max_length=40)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    price: Annotated[str, Form(max_length=20)] = "",
    delta: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The pre-trade check (§7): changes nothing, so a viewer may run it, as in the API."""
    scope = portfolio_scope(request, portfolio)
    check_csrf(request, csrf)
    form = {"action": action, "symbol": symbol, "quantity": quantity, "price": price, "delta": delta}
    try:
        result = protocol.check_trade(
            session.ctx(request).engine, scope.portfolio_id, account, action, symbol, _quantity(quantity),
            price.strip() or "0", date.today(), delta.strip() or None,
        )  # fmt: skip
    except InvalidInput as exc:
        return _account(request, scope, account, check_error=str(exc), form=form, status=400)
    return _account(request, scope, account, check=result, form=form)


def _quantity(text: str) -> int:
    t = text.strip()
    if not (t.isascii() and t.isdigit()) or len(t) > 10:
        raise InvalidInput(f"quantity: expected a positive whole number, got {text!r}")
    return int(t)


@router.post("/p/{portfolio}/accounts/{account}/fills")
@page
def record_fill(
    request: Request,
    portfolio: str,
    account: str,
    csrf: Csrf = None,
    key: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=10)] = "",
    symbol: Annotated[str, Form(max_length=40)] = "",
    quantity: Annotated[str, Form(max_length=12)] = "",
    price: Annotated[str, Form(max_length=20)] = "",
    commission: Annotated[str, Form(max_length=20)] = "",
    trade_date: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Traders record broker facts. The form carries its own idempotency key, so a double submit
    records once."""
    scope = portfolio_scope(request, portfolio, Role.trader)
    check_csrf(request, csrf)
    form = {"action": action, "symbol": symbol, "quantity": quantity, "price": price, "commission": commission,
            "trade_date": trade_date}  # fmt: skip
    try:
        try:
            act = FillAction(action.strip().upper())
        except ValueError:
            raise InvalidInput(f"action: choose one of {', '.join(a.value for a in FillAction)}") from None
        fill = Fill(
            account, act, symbol.strip() or None, _quantity(quantity) if quantity.strip() else 0, price.strip() or "0",
            parse_money(commission, allow_zero=True) if commission.strip() else 0,
            _day(trade_date, "trade date", date.today()),
        )  # fmt: skip
        if not key.startswith("web-"):
            raise InvalidInput("key: reload the page to get a fresh form")
        result = record_fills(session.ctx(request).engine, scope.actor, scope.portfolio_id, [(key, fill)])[0]
    except AlluseError as exc:
        if isinstance(exc, InvalidInput) or type(exc).__name__ in ("RuleViolation", "NotFound"):
            return _account(
                request, scope, account, fill_error=str(exc), form=form, status=STATUS.get(type(exc).__name__, 400)
            )
        raise
    return _account(request, scope, account, fill_result=result)


@router.get("/p/{portfolio}/tree")
@page
def tree(request: Request, portfolio: str) -> Response:
    scope = portfolio_scope(request, portfolio)
    roots = dashboard.fork_tree(session.ctx(request).engine, scope.portfolio_id)
    return render(request, "tree.html", scope=scope, roots=roots, drawing=layout(roots), active="tree")


@router.get("/p/{portfolio}/lifecycle")
@page
def lifecycle_page(request: Request, portfolio: str, as_of: str | None = None) -> Response:
    scope = portfolio_scope(request, portfolio)
    day = _day(as_of, "as of", date.today())
    return _lifecycle(request, scope, day)


def _lifecycle(request: Request, scope: PageScope, day: date, applied: Any = None) -> Response:
    engine = session.ctx(request).engine
    from alluse.services.earmarks import earmark_report

    return render(
        request, "lifecycle.html", scope=scope, active="lifecycle", as_of=day.isoformat(),
        plan=lifecycle.plan(engine, scope.portfolio_id, day), history=lifecycle_view.history(engine, scope.portfolio_id),
        earmarks=earmark_report(engine, scope.portfolio_id), applied=applied,
    )  # fmt: skip


@router.post("/p/{portfolio}/lifecycle/run")
@page
def lifecycle_run(
    request: Request,
    portfolio: str,
    csrf: Csrf = None,
    as_of: Annotated[str, Form(max_length=10)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Owners only: apply the plan. Repeating it never acts twice (the rule keys are the idempotency)."""
    scope = portfolio_scope(request, portfolio, Role.owner)
    check_csrf(request, csrf)
    day = _day(as_of, "as of", date.today())
    if confirm != "yes":
        raise InvalidInput("confirm: tick the box to confirm the run")
    report = lifecycle.run(session.ctx(request).engine, scope.actor, scope.portfolio_id, day)
    return _lifecycle(request, scope, day, applied=report)


@router.get("/p/{portfolio}/reports")
@page
def reports_page(request: Request, portfolio: str, start: str | None = None, end: str | None = None) -> Response:
    scope = portfolio_scope(request, portfolio)
    engine, pid, today = session.ctx(request).engine, scope.portfolio_id, date.today()
    last = min(_day(end, "to", today), today)
    opened = dashboard.first_day(engine, pid) or last
    first = _day(start, "from", max(opened, last - timedelta(days=90)))
    if first > last:
        raise InvalidInput("from: the period starts after it ends")
    if (last - first).days > MAX_REPORT_DAYS:
        raise InvalidInput(f"the period is limited to {MAX_REPORT_DAYS} days")
    perf = reports.performance_report(engine, pid, first, last)
    weeks_from = last - timedelta(weeks=12)
    drawn = [
        *charts.performance_charts(perf, per_account=len(perf["accounts"]) <= 12),
        charts.weekly_by_account_chart(dashboard.weekly_income_by_account(engine, pid, weeks_from, last), today),
        *charts.weekly_charts(reports.weekly(engine, pid, weeks_from, last), today),
        charts.premium_chart(dashboard.premium_by_underlying(engine, pid, first, last), f"{first} – {last}"),
        *charts.monthly_charts(reports.monthly(engine, pid, last.year), today),
        charts.accuracy_chart(reports.week_accuracy(engine, pid)),
    ]
    table = [{k: a[k] for k in ("account", "start_nav_cents", "end_nav_cents", "flows_cents", "twr", "max_drawdown")}
             for a in perf["accounts"]]  # fmt: skip
    return render(
        request, "reports.html", scope=scope, active="reports", charts=drawn, start=first.isoformat(),
        end=last.isoformat(), performance=table, today=today.isoformat(),
    )  # fmt: skip


WEB_PROJECTION_PATHS = 200  # a page answers in well under a second; the CLI runs 10,000


@router.get("/p/{portfolio}/projection")
@page
def projection_page(request: Request, portfolio: str, scenario: str = "moderate") -> Response:
    """The portfolio as it stands, projected under a shipped scenario (docs/projections.md). Reads only."""
    from alluse.sim.project import load_scenario, project
    from alluse.sim.scenario import SHIPPED

    scope = portfolio_scope(request, portfolio)
    if scenario not in SHIPPED:
        raise InvalidInput(f"scenario must be one of {', '.join(SHIPPED)}")
    sc = load_scenario(scenario, paths=WEB_PROJECTION_PATHS)
    summary = project(sc, engine=session.ctx(request).engine, portfolio=scope.portfolio_id)
    return render(
        request, "projection.html", scope=scope, active="projection", charts=charts.projection_charts(summary),
        summary=summary, scenarios=SHIPPED, scenario=scenario,
    )  # fmt: skip


@router.get("/p/{portfolio}/alerts")
@page
def alerts(request: Request, portfolio: str) -> Response:
    scope = portfolio_scope(request, portfolio)
    data = dashboard.overview(session.ctx(request).engine, scope.portfolio_id)
    return render(request, "alerts.html", scope=scope, o=data, active="alerts")


@router.get("/p/{portfolio}/roles")
@page
def roles(request: Request, portfolio: str) -> Response:
    scope = portfolio_scope(request, portfolio, Role.owner)
    return _roles(request, scope)


def _roles(request: Request, scope: PageScope, message: str | None = None, error: str | None = None) -> Response:
    rows = access.list_roles(session.ctx(request).engine, scope.portfolio_id)
    return render(request, "roles.html", 400 if error else 200, scope=scope, active="roles", roles=rows,
                  message=message, error=error, role_key=f"web-{uuid.uuid4()}")  # fmt: skip


@router.post("/p/{portfolio}/roles")
@page
def grant(
    request: Request,
    portfolio: str,
    csrf: Csrf = None,
    key: Annotated[str, Form(max_length=200)] = "",
    username: Annotated[str, Form(max_length=50)] = "",
    role: Annotated[str, Form(max_length=10)] = "",
    revoke: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Owners manage roles: grant (or change) a role, or revoke it."""
    scope = portfolio_scope(request, portfolio, Role.owner)
    check_csrf(request, csrf)
    engine = session.ctx(request).engine
    if not key.startswith("web-"):
        raise InvalidInput("key: reload the page to get a fresh form")
    try:
        if revoke == "yes":
            revoked = access.revoke_role(engine, scope.actor, scope.portfolio_id, username, key)
            return _roles(request, scope, f"{revoked['username']} no longer holds a role here")
        r = access.grant_role(engine, scope.actor, scope.portfolio_id, username, role, key)
    except (InvalidInput, AlluseError) as exc:
        if type(exc).__name__ in ("InvalidInput", "NotFound", "Conflict"):
            return _roles(request, scope, error=str(exc))
        raise
    return _roles(request, scope, f"{r['username']} is now {r['role']}")


# --- broker statements ---------------------------------------------------------------------------


@router.get("/p/{portfolio}/statements")
@page
def statements(request: Request, portfolio: str) -> Response:
    scope = portfolio_scope(request, portfolio)
    return render(request, "statements.html", scope=scope, active="statements", imported=None, reconciled=None)


def _statement(upload: UploadFile | None) -> bytes:
    if upload is None or not upload.filename:
        raise InvalidInput("statement: choose an IBKR Flex XML file")
    data = upload.file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"statement: larger than {MAX_BYTES // (1024 * 1024)} MB")
    return data


@router.post("/p/{portfolio}/statements/reconcile")
@page
def reconcile(
    request: Request, portfolio: str, csrf: Csrf = None, statement: UploadFile | None = File(None)
) -> Response:
    """Compare the statement with the record, as of its end date. Changes nothing: any role may."""
    scope = portfolio_scope(request, portfolio)
    check_csrf(request, csrf)
    report = reconcile_statement(session.ctx(request).engine, scope.portfolio_id, _statement(statement))
    return render(request, "statements.html", scope=scope, active="statements", imported=None, reconciled=report)


@router.post("/p/{portfolio}/statements/import")
@page
def import_ibkr(
    request: Request, portfolio: str, csrf: Csrf = None, statement: UploadFile | None = File(None)
) -> Response:
    """Traders import: each row once (keyed by IBKR's ids), all rows or none, then the reconciliation."""
    scope = portfolio_scope(request, portfolio, Role.trader)
    check_csrf(request, csrf)
    report = import_statement(session.ctx(request).engine, scope.actor, scope.portfolio_id, _statement(statement))
    return render(
        request, "statements.html", scope=scope, active="statements", imported=report,
        reconciled=report["reconciliation"],
    )  # fmt: skip


# --- mounting ------------------------------------------------------------------------------------


def mount(app: FastAPI) -> None:
    """The pages, and the vendored static files (gzip-compressed for clients that accept it)."""
    app.include_router(router)
    static = StaticFiles(packages=[("alluse.web", "static")])
    app.mount("/static", GZipMiddleware(static, minimum_size=1000), name="static")
