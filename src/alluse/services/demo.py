"""A realistic demo portfolio, built through the same use cases a user calls. Every step has a fixed
idempotency key, so a second run replays instead of duplicating."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.engine import Engine

from alluse.domain.errors import AlluseError
from alluse.domain.money import format_usd
from alluse.services import brokers, cash, configuration, groups
from alluse.services.configuration import parse_allocation
from alluse.services.portfolios import create_portfolio

P = "demo"


def build_demo(engine: Engine, actor: str) -> Iterator[str]:
    create_portfolio(engine, actor, P, "demo:portfolio", "moderate")
    yield "portfolio demo (moderate template: 40/30/30, 5 % cash buffers)"

    pool = [f"IBKR:U10000{n:02d}" for n in range(1, 10)]
    brokers.register(engine, actor, P, pool, "demo:pool")
    yield f"registered {len(pool)} IBKR accounts into the pool"

    a1 = groups.open_group(engine, actor, P, "demo:A1", groups.group_opening(25_000_000, pool[:3]))
    yield f"opened A1 with {format_usd(a1['amount_cents'])} on IBKR (the §4 worked example)"
    a2 = groups.open_group(engine, actor, P, "demo:A2", groups.group_opening(10_000_000))
    yield f"opened A2 with {format_usd(a2['amount_cents'])} on paper accounts"
    a3 = groups.open_group(
        engine, actor, P, "demo:A3", groups.group_opening(40_000_000, pool[3:6], parse_allocation("50/25/25"))
    )
    yield f"opened A3 with {format_usd(a3['amount_cents'])}, allocation 50/25/25, on IBKR"

    configuration.set_value(engine, actor, P, "A3-GEN", "template", "aggressive", "demo:cfg1")
    configuration.set_value(engine, actor, P, "A2-REV", "buffer_pct", "7.5", "demo:cfg2")
    yield "A3-GEN uses the aggressive template; A2-REV keeps a 7.5 % buffer"

    moves = [
        ("demo:m1", cash.deposit("A1", 2_000_000, memo="quarterly savings")),
        ("demo:m2", cash.withdrawal("A1-REV", 250_000, memo="monthly income")),
        ("demo:m3", cash.transfer("A2-GEN", "A2-COM", 500_000, memo="rebalance")),
        ("demo:m4", cash.deposit("A3-REV", 100_000, memo="typo: meant A2-REV")),
    ]
    done = cash.move_cash(engine, actor, P, moves)
    yield "deposited $20,000.00 into A1 (split 40/30/30), took $2,500.00 income from A1-REV, moved $5,000.00 A2-GEN → A2-COM"
    cash.reverse(engine, actor, P, done[3]["transfer_id"], "deposit went to the wrong account", "demo:rev1")
    cash.move_cash(engine, actor, P, [("demo:m5", cash.deposit("A2-REV", 100_000, memo="corrected deposit"))])
    yield f"reversed the mistaken $1,000.00 deposit (transfer #{done[3]['transfer_id']}) and re-posted it to A2-REV"

    for text, move in [
        ("a Com-Acc withdrawal", cash.withdrawal("A1-COM", 100_000)),
        ("a withdrawal of more cash than the account holds", cash.withdrawal("A2-GEN", 3_600_000)),
    ]:
        try:
            cash.move_cash(engine, actor, P, [(f"demo:refused:{text}", move)])
        except AlluseError as exc:
            yield f"refused as the rules demand, {text}: {exc}"
