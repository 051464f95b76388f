"""What customers wrote behind a case category (agg_support_verbatims_weekly), built by dbt on a
copy of the small world whose cases and consents the test sets: texts only from customers whose
consent allows it, their names, email addresses and phone numbers masked, their length bound."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.slow

PHONE = "+44 20 7946 0958"


def test_verbatims_come_only_from_consenting_customers_and_name_no_one(built_copy, settings):
    from touchpoint.transform.dbt import run_dbt

    with psycopg.connect(built_copy, autocommit=True) as conn:
        two = conn.execute(
            """
            select distinct on (c.customer_key) c.case_id, c.customer_key, d.display_name, d.email
            from marts.fct_support_cases as c
            join restricted.dim_customer_contacts as d using (customer_key)
            where d.display_name like '%% %%' and d.email is not null
            order by c.customer_key, c.case_id
            limit 2
            """
        ).fetchall()
        assert len(two) == 2, two
        (refusing_case, refusing, _, _), (allowing_case, allowing, name, email) = two
        conn.execute(
            "update marts.dim_customers set may_be_named = (customer_key = %s)"
            " where customer_key in (%s, %s)",
            (allowing, refusing, allowing),
        )
        conn.execute(
            "update marts.fct_support_cases set subject = 'Refused: my own words'"
            " where case_id = %s",
            (refusing_case,),
        )
        conn.execute(
            "update marts.fct_support_cases set subject = %s where case_id = %s",
            (f"Allowed: {name} here, mail {email} or call {PHONE}. " + "more " * 60, allowing_case),
        )
    run_dbt(
        ["run", "-s", "agg_support_verbatims_weekly"],
        settings.dbt_project_dir,
        built_copy,
        settings.var_dir,
    )
    with psycopg.connect(built_copy) as conn:
        texts = [
            r[0]
            for r in conn.execute(
                "select verbatim from marts.agg_support_verbatims_weekly"
                " where source = 'ticket_subject'"
            )
        ]
    assert texts and not [t for t in texts if t.startswith("Refused")]
    [allowed] = {t for t in texts if t.startswith("Allowed")}
    for word in name.split():
        assert word.lower() not in allowed.lower(), allowed
    assert email not in allowed and "[email]" in allowed
    assert PHONE not in allowed and "[phone]" in allowed
    assert len(allowed) <= 120 and allowed.endswith("…")
