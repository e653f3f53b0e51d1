"""The isolation matrix: every endpoint × every role (user and API key) × someone else's portfolio
answers 404, the same answer as for a portfolio that does not exist, changes nothing and leaks
nothing. Within one's own portfolio, each endpoint needs exactly its documented role.

Endpoints are taken from the app's own OpenAPI document, so a new endpoint without an entry in
ENDPOINTS fails the test instead of going unchecked."""

from __future__ import annotations

import re
from datetime import date

import sqlalchemy as sa

from alluse.domain.parsing import parse_money
from alluse.security.keyring import Keyring
from alluse.services import access, brokers, cash, groups, trades, webhooks
from alluse.services.portfolios import create_portfolio
from alluse.store.schema import audit_log, portfolios
from alluse.views.access import portfolio_id_for

ROLES = ("viewer", "trader", "owner")

FEE = {"account": "{account}", "action": "FEE", "amount": "1", "trade_date": "2026-01-05"}

# (method, path template) -> (least role on the portfolio, JSON body). Path parameters are filled
# from the portfolio under test: {account}/{target} = its Gen-Acc, {ref} = its first brokerage account.
ENDPOINTS: dict[tuple[str, str], tuple[str, dict | None]] = {
    ("GET", "/portfolios/{portfolio}/accounts"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/accounts/{account}"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/brokerage-accounts"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/config/{target}"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/audit"): ("viewer", None),
    ("POST", "/portfolios/{portfolio}/deposits"): ("trader", {"to": "{group}", "amount": "10"}),
    ("POST", "/portfolios/{portfolio}/withdrawals"): ("trader", {"account": "{account}", "amount": "1"}),
    (
        "POST",
        "/portfolios/{portfolio}/transfers",
    ): ("trader", {"from_account": "{account}", "to_account": "{group}-REV", "amount": "1"}),
    ("POST", "/portfolios/{portfolio}/reversals"): ("trader", {"transfer_id": 0, "reason": "matrix"}),
    ("POST", "/portfolios/{portfolio}/groups"): ("owner", {"amount": "1000"}),
    ("POST", "/portfolios/{portfolio}/brokerage-accounts"): ("owner", {"accounts": ["IBKR:M{n}"]}),
    (
        "PUT",
        "/portfolios/{portfolio}/brokerage-accounts/{ref}/credentials",
    ): ("owner", {"credentials": "s3cret-{n}"}),
    ("PUT", "/portfolios/{portfolio}/config/{target}"): ("owner", {"key": "buffer_pct", "value": "5"}),
    ("GET", "/portfolios/{portfolio}/roles"): ("owner", None),
    ("PUT", "/portfolios/{portfolio}/roles/{username}"): ("owner", {"role": "viewer"}),
    ("DELETE", "/portfolios/{portfolio}/roles/{username}"): ("owner", None),
    # Trades, tax and reports.
    ("POST", "/portfolios/{portfolio}/fills"): ("trader", FEE),
    ("POST", "/portfolios/{portfolio}/fills/batch"): ("trader", {"fills": [FEE]}),
    ("POST", "/portfolios/{portfolio}/statements/ibkr"): ("trader", None),
    ("POST", "/portfolios/{portfolio}/statements/ibkr/reconcile"): ("viewer", None),
    ("POST", "/portfolios/{portfolio}/marks"): ("trader", {"prices": {"MTRX": "1.5"}, "as_of": "2026-01-06"}),
    ("GET", "/portfolios/{portfolio}/positions"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/alerts"): ("viewer", None),
    (
        "POST",
        "/portfolios/{portfolio}/check-trade",
    ): ("viewer", {"account": "{account}", "action": "BTO", "symbol": "MTRX", "quantity": 1, "price": "1"}),
    ("POST", "/portfolios/{portfolio}/weeks"): (
        "trader",
        {"stage": "predict", "week_type": "RED", "week": "2026-01-05"},
    ),
    ("GET", "/portfolios/{portfolio}/weeks/accuracy"): ("viewer", None),
    (
        "POST",
        "/portfolios/{portfolio}/tax/payments",
    ): ("trader", {"account": "{account}", "tax_year": 2026, "amount": "1"}),
    ("PUT", "/portfolios/{portfolio}/tax/rates"): ("owner", {"short_term": "30", "long_term": "15", "dividend": "15"}),
    ("GET", "/portfolios/{portfolio}/accounts/{account}/surplus"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/accounts/{account}/pnl"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/reports/weekly"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/reports/monthly"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/reports/quarterly"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/reports/tax-year"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/reports/realized"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/reports/performance"): ("viewer", None),
    # The lifecycle.
    ("GET", "/portfolios/{portfolio}/lifecycle/plan"): ("viewer", None),
    ("POST", "/portfolios/{portfolio}/lifecycle/run"): ("owner", {"as_of": "2026-01-05"}),
    ("GET", "/portfolios/{portfolio}/lifecycle/history"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/lifecycle/earmarks"): ("viewer", None),
    ("GET", "/portfolios/{portfolio}/tree"): ("viewer", None),
    # Projections (read only).
    ("GET", "/portfolios/{portfolio}/projection"): ("viewer", None),
    # Events and webhooks.
    ("GET", "/portfolios/{portfolio}/events"): ("viewer", None),
    ("POST", "/portfolios/{portfolio}/webhooks"): ("owner", {"url": "http://127.0.0.1:9/hook-{n}", "kinds": ["*"]}),
    ("GET", "/portfolios/{portfolio}/webhooks"): ("owner", None),
    ("GET", "/portfolios/{portfolio}/webhooks/{endpoint_id}/deliveries"): ("owner", None),
    ("DELETE", "/portfolios/{portfolio}/webhooks/{endpoint_id}"): ("owner", None),
}


# Query strings for endpoints with a required query parameter, so the roles allowed in reach the use case.
QUERY = {
    "/portfolios/{portfolio}/accounts/{account}/pnl": "?from=2026-01-01",
    "/portfolios/{portfolio}/reports/performance": "?from=2026-01-01",
    "/portfolios/{portfolio}/lifecycle/plan": "?as_of=2026-01-05",
    "/portfolios/{portfolio}/projection": "?paths=5&years=1",
}


def _webhook(engine: sa.Engine, keyring: Keyring, portfolio: str, n: int) -> int:
    r = webhooks.register(engine, "test", portfolio, f"http://127.0.0.1:9/{portfolio}-{n}", ["*"], f"hook:{n}", keyring)
    return int(r["endpoint_id"])


def _setup(engine: sa.Engine, keyring: Keyring) -> dict:
    """Two portfolios: ours (P, group A1) and the victim's (V, group Z9 with distinctive figures), each
    holding one share of MTRX (so marks and the protocol check have an instrument)."""
    info = {}
    for name, group, amount in (("ours", "A1", "100000"), ("victim", "Z9", "777777.77")):
        create_portfolio(engine, "test", name, f"create:{name}")
        brokers.register(engine, "test", name, [f"IBKR:{group}BROKER"], f"reg:{name}")
        g = groups.open_group(
            engine, "test", name, f"open:{name}", groups.group_opening(parse_money(amount), name=group)
        )
        (t,) = cash.move_cash(engine, "test", name, [(f"dep:{name}", cash.deposit(f"{group}-GEN", 1000))])
        trades.record_fill(
            engine,
            "test",
            name,
            f"buy:{name}",
            trades.Fill(f"{group}-GEN", trades.FillAction.BTO, "MTRX", 1, "1.25", 0, date(2026, 1, 5)),
        )
        with engine.connect() as conn:
            pid = portfolio_id_for(conn, name)
        info[name] = {
            "id": pid,
            "group": group,
            "account": f"{group}-GEN",
            "ref": f"IBKR:{group}BROKER",
            "transfer": t["transfer_id"],
            "opened": g,
            "webhook": _webhook(engine, keyring, name, 0),
        }
    access.create_user(engine, "victim-owner", "a long password 1", is_admin=False)
    access.grant_role(engine, "test", info["victim"]["id"], "victim-owner", "owner", "g:victim-owner")
    access.create_user(engine, "bystander", "a long password 2")
    access.grant_role(engine, "test", info["victim"]["id"], "bystander", "viewer", "g:bystander:v")
    access.grant_role(engine, "test", info["ours"]["id"], "bystander", "viewer", "g:bystander:o")
    return info


def _fill(text: str, p: dict, n: int) -> str:
    return (
        (text + QUERY.get(text, ""))
        .replace("{portfolio}", str(p["ref_in_path"]))
        .replace("{account}", p["account"])
        .replace("{target}", p["account"])
        .replace("{ref}", p["ref"])
        .replace("{group}", p["group"])
        .replace("{username}", "bystander")
        .replace("{endpoint_id}", str(p["webhook"]))
        .replace("{n}", str(n))
    )


def _body(body: dict | None, p: dict, n: int) -> dict | None:
    if body is None:
        return None
    out = {}
    for k, v in body.items():
        if isinstance(v, str):
            out[k] = _fill(v, p, n)
        elif isinstance(v, list):
            out[k] = [_body(x, p, n) if isinstance(x, dict) else _fill(x, p, n) for x in v]
        else:
            out[k] = p["transfer"] if k == "transfer_id" else v
    return out


def _principals(api, info: dict) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """A user and an API key for each role on our portfolio; one user with no role at all."""
    out = {}
    api.user("keymaker", role="owner", portfolio="ours")
    maker = api.headers_for("keymaker")
    for role in ROLES:
        out[f"user:{role}"] = api.user(f"u-{role}", role=role, portfolio="ours")
        r = api.client.post(
            "/api-keys", json={"name": f"k-{role}", "scopes": [{"portfolio": "ours", "role": role}]}, headers=maker
        )
        assert r.status_code == 201, r.text
        out[f"apikey:{role}"] = {"Authorization": f"Bearer {r.json()['key']}"}
    out["user:none"] = api.user("u-none")
    return out


def _victim_state(engine: sa.Engine, pid: int) -> tuple:
    with engine.connect() as conn:
        head = conn.execute(
            sa.select(portfolios.c.audit_seq, portfolios.c.audit_head).where(portfolios.c.id == pid)
        ).one()
        n = conn.execute(sa.select(sa.func.count()).where(audit_log.c.portfolio_id == pid)).scalar_one()
    return tuple(head), n


def test_endpoint_table_covers_every_portfolio_endpoint(api):  # type: ignore[no-untyped-def]
    paths = api.app.openapi()["paths"]
    found = {(m.upper(), t) for t, ms in paths.items() for m in ms if "{portfolio}" in t}
    assert found == set(ENDPOINTS), f"update ENDPOINTS: {found ^ set(ENDPOINTS)}"


def test_someone_elses_portfolio_is_404_with_nothing_leaked(api):  # type: ignore[no-untyped-def]
    info = _setup(api.engine, api.app.state.ctx.keyring)
    who = _principals(api, info)
    victim = info["victim"]
    before = _victim_state(api.engine, victim["id"])
    secrets_of_victim = ["Z9", "777", "IBKR:Z9BROKER", "victim-owner", "bystander"]
    n = 0
    for (method, template), (_least, body) in ENDPOINTS.items():
        for label, headers in who.items():
            for ref in (victim["id"], "victim"):
                n += 1
                p = {**victim, "ref_in_path": ref}
                r = api.client.request(method, _fill(template, p, n), json=_body(body, p, n), headers=headers)
                assert r.status_code == 404, (label, method, template, ref, r.status_code, r.text)
                problem = r.json()
                assert problem["detail"] == f"no portfolio {str(ref)!r} you have access to", problem
                for s in secrets_of_victim:
                    assert s not in r.text.replace(f"'{ref}'", ""), (label, method, template, s, r.text)
                # Exactly the answer a portfolio that does not exist gets.
                ghost = {**victim, "ref_in_path": 999999 if isinstance(ref, int) else "no-such"}
                g = api.client.request(method, _fill(template, ghost, n), json=_body(body, ghost, n), headers=headers)
                assert g.status_code == 404
                assert g.json() == {
                    **problem,
                    "detail": problem["detail"].replace(repr(str(ref)), repr(str(ghost["ref_in_path"]))),
                }
    assert n == len(ENDPOINTS) * len(who) * 2
    assert _victim_state(api.engine, victim["id"]) == before, "a refused request changed the victim's portfolio"


def test_portfolio_lists_and_global_endpoints_show_only_ones_own(api):  # type: ignore[no-untyped-def]
    info = _setup(api.engine, api.app.state.ctx.keyring)
    who = _principals(api, info)
    for label, headers in who.items():
        listed = api.client.get("/portfolios", headers=headers)
        assert listed.status_code == 200
        assert "victim" not in listed.text and "Z9" not in listed.text, label
        me = api.client.get("/auth/me", headers=headers)
        assert "victim" not in me.text, label
        for method, path in (("GET", "/users"), ("POST", "/users"), ("GET", "/verify")):
            body = (
                {"username": "x-" + re.sub(r"\W", "", label), "password": "long enough pw"}
                if method == "POST"
                else None
            )
            r = api.client.request(method, path, json=body, headers=headers)
            assert r.status_code == 403, (label, method, path, r.status_code)
        r = api.client.post(
            "/api-keys", json={"name": "steal", "scopes": [{"portfolio": "victim", "role": "viewer"}]}, headers=headers
        )
        assert r.status_code in (403, 404) and "Z9" not in r.text, (label, r.status_code)
        keys = api.client.get("/api-keys", headers=headers)
        assert keys.status_code in (200, 403) and "victim" not in keys.text
    # Someone else's API key can be neither seen nor revoked.
    owner_v = api.headers_for("victim-owner")
    r = api.client.post(
        "/api-keys", json={"name": "v", "scopes": [{"portfolio": "victim", "role": "viewer"}]}, headers=owner_v
    )
    vkey = r.json()["api_key_id"]
    for label, headers in who.items():
        r = api.client.delete(f"/api-keys/{vkey}", headers=headers)
        assert r.status_code in (403, 404), (label, r.status_code)
    with api.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT revoked_at FROM api_keys WHERE id = :k"), {"k": vkey}).scalar() is None


def test_each_endpoint_needs_exactly_its_role_on_ones_own_portfolio(api):  # type: ignore[no-untyped-def]
    info = _setup(api.engine, api.app.state.ctx.keyring)
    who = _principals(api, info)
    ours = {**info["ours"], "ref_in_path": "ours"}
    n = 1000
    for (method, template), (least, body) in ENDPOINTS.items():
        for label, headers in who.items():
            n += 1
            role = label.split(":")[1]
            r = api.client.request(method, _fill(template, ours, n), json=_body(body, ours, n), headers=headers)
            if role == "none":
                assert r.status_code == 404, (label, method, template, r.status_code)
            elif ROLES.index(role) < ROLES.index(least):
                assert r.status_code == 403, (label, method, template, r.status_code, r.text)
                assert r.json()["detail"] == f"{least} role needed on this portfolio (you hold {role})"
            else:
                assert r.status_code not in (401, 403, 404), (label, method, template, r.status_code, r.text)
            if method == "DELETE" and r.status_code == 200 and "{endpoint_id}" in template:
                # a fresh endpoint for the next principal to disable
                ours["webhook"] = _webhook(api.engine, api.app.state.ctx.keyring, "ours", n)
            elif method == "DELETE" and r.status_code == 200:
                # put the bystander back for the next principal
                access.grant_role(api.engine, "test", ours["id"], "bystander", "viewer", f"regrant:{n}")


def test_ids_of_someone_elses_rows_are_not_found_through_ones_own_portfolio(api):  # type: ignore[no-untyped-def]
    """Naming the other portfolio's account or transfer by id, inside a portfolio one owns."""
    info = _setup(api.engine, api.app.state.ctx.keyring)
    owner = api.user("ours-owner", role="owner", portfolio="ours")
    victim = info["victim"]
    before = _victim_state(api.engine, victim["id"])
    v_account = str(victim["opened"]["accounts"]["GEN"]["account_id"])
    requests = [
        ("GET", f"/portfolios/ours/accounts/{v_account}", None),
        ("GET", f"/portfolios/ours/config/{v_account}", None),
        ("PUT", f"/portfolios/ours/config/{v_account}", {"key": "buffer_pct", "value": "6"}),
        ("POST", "/portfolios/ours/deposits", {"to": v_account, "amount": "1", "group": False}),
        ("POST", "/portfolios/ours/withdrawals", {"account": v_account, "amount": "1"}),
        ("POST", "/portfolios/ours/transfers", {"from_account": v_account, "to_account": "A1-GEN", "amount": "1"}),
        ("POST", "/portfolios/ours/reversals", {"transfer_id": victim["transfer"], "reason": "steal"}),
        ("PUT", f"/portfolios/ours/brokerage-accounts/{victim['ref']}/credentials", {"credentials": "x"}),
        ("POST", "/portfolios/ours/fills", {**FEE, "account": v_account}),
        ("POST", "/portfolios/ours/fills/batch", {"fills": [{**FEE, "account": v_account}]}),
        ("POST", "/portfolios/ours/tax/payments", {"account": v_account, "tax_year": 2026, "amount": "1"}),
        ("POST", "/portfolios/ours/check-trade", {"account": v_account, "action": "BTO", "symbol": "X", "quantity": 1}),
        ("GET", f"/portfolios/ours/positions?account={v_account}", None),
        ("GET", f"/portfolios/ours/accounts/{v_account}/surplus", None),
        ("GET", f"/portfolios/ours/accounts/{v_account}/pnl?from=2026-01-01", None),
        ("GET", f"/portfolios/ours/reports/performance?from=2026-01-01&account={v_account}", None),
    ]
    for method, path, body in requests:
        r = api.client.request(method, path, json=body, headers=owner)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        said = r.text.replace(victim["ref"], "")  # the caller's own words echoed back are no leak
        assert "Z9" not in said and "777" not in said, r.text
    assert _victim_state(api.engine, victim["id"]) == before
