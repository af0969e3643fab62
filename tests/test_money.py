"""Money is exact: one rounding function per currency exponent, and storage that never drifts."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Numeric, Table, func, insert, select, text

from billing_core.db.engine import Database
from billing_core.db.models import Account
from billing_core.errors import InvalidInput
from billing_core.money import currency_exponent, parse_amount, round_money, to_micros
from tests import factories as f


@pytest.mark.parametrize(("currency", "exponent"), [("JPY", 0), ("USD", 2), ("eur", 2), ("KWD", 3), ("USDC", 6)])
def test_exponent_per_iso_4217_and_tokens(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


def test_round_money_uses_the_currency_exponent_and_an_explicit_mode() -> None:
    assert round_money(Decimal("1234.5"), "JPY") == Decimal("1234")  # banker's rounding by default
    assert round_money(Decimal("1234.5"), "JPY", rounding=ROUND_HALF_UP) == Decimal("1235")
    assert round_money(Decimal("2.675"), "USD") == Decimal("2.68")
    assert round_money(Decimal("1.23456"), "KWD") == Decimal("1.235")
    assert round_money(Decimal("0.1234567"), "USDC") == Decimal("0.123457")


def test_unknown_currency_and_absurd_amounts_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="Unknown currency"):
        round_money(Decimal(1), "XYZ")
    with pytest.raises(InvalidInput, match="larger than we accept"):
        parse_amount("1e15")
    with pytest.raises(InvalidInput, match="not a number"):
        parse_amount("12,3abc")
    with pytest.raises(InvalidInput, match="finite"):
        parse_amount("NaN")
    with pytest.raises(InvalidInput):
        to_micros(Decimal("0.0000001"))  # would silently lose money


def test_sqlite_numeric_drifts_but_our_money_column_does_not(db: Database) -> None:
    """The reason money is stored as integer micro-units: SQLite's NUMERIC is a float in disguise."""
    amount = Decimal("123456789012.123457")
    if db.dialect == "sqlite":
        scratch = Table("scratch", MetaData(), Column("id", Integer, primary_key=True), Column("v", Numeric(20, 6)))
        scratch.create(db.engine)
        with db.engine.begin() as conn:
            conn.execute(insert(scratch).values(id=1, v=amount))
            stored = conn.execute(text("SELECT v FROM scratch")).scalar_one()
        assert Decimal(str(stored)) != amount  # the drift we avoid: a float came back
    with db.unit_of_work() as s:
        acct = f.account(s)
        acct.credit_balance = amount
    with db.unit_of_work() as s:
        assert s.get(Account, acct.id).credit_balance == amount  # type: ignore[union-attr]
        raw = s.execute(text("SELECT credit_balance FROM accounts")).scalar_one()
    assert raw == 123456789012123457  # an exact integer on disk


def test_sums_of_many_small_amounts_stay_exact(db: Database) -> None:
    with db.unit_of_work() as s:
        acct = f.account(s)
        for i in range(1, 11):
            s.add(Account(name=f"a{i}", currency="USD", timezone="UTC", credit_balance=Decimal("0.1"),
                          created_at=f.T0))
        acct.credit_balance = Decimal("0.2")
    with db.unit_of_work() as s:
        total = s.scalar(select(func.sum(Account.credit_balance)))
    assert total == Decimal("1.2")  # 10 × 0.1 + 0.2, where floats give 1.2000000000000002
