"""Who arrives: each person's name, address, arrival, acquisition, consent and company."""

from __future__ import annotations

from datetime import datetime, timedelta

from touchpoint_sim.population.base import Base
from touchpoint_sim.population.catalog import (
    ACQUISITION,
    COMPANY_WORDS,
    COUNTRIES,
    DOMAINS,
    FIRST_NAMES,
    INDUSTRIES,
    LAST_NAMES,
    PLANS,
    USER_AGENTS,
)
from touchpoint_sim.population.records import ID_BASE, Company, CrmRecord, Person


class People(Base):
    """The people of the world, drawn from the main stream before anyone lives."""

    def person(self, index: int) -> Person:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        acquisition = rng.choices(ACQUISITION, [a[5] for a in ACQUISITION])[0]
        arrived = self.arrival()
        email = f"{first}.{last}{index}@{rng.choice(DOMAINS)}"
        p = Person(
            index=index,
            first=first,
            last=last,
            email=email,
            anonymous_id=self.uid(),
            user_id=f"usr_{index:06d}",
            contact_id=str(ID_BASE["contacts"] + 1 + index),
            acquisition=acquisition[:3],
            arrived_at=arrived,
            signs_up=rng.random() < 0.7,
            country=rng.choice(COUNTRIES),
            user_agent=rng.choice(USER_AGENTS),
            ip=f"203.0.113.{rng.randint(1, 254)}",
            plan=rng.choices(PLANS, (0.5, 0.35, 0.15))[0],
        )
        if rng.random() < 0.6:  # the visitor answered the consent banner
            p.consent = {"analytics": rng.random() < 0.92, "marketing": rng.random() < 0.7}
        if rng.random() < 0.35:  # buys for a business
            p.company = self.company_for(p)
        # a second address: work (or another personal) email used with sales
        if rng.random() < 0.14:
            domain = p.company.domain if p.company else rng.choice(DOMAINS)
            p.second_email = f"{first[0]}{last}.{index}@{domain}"
        return p

    def arrival(self) -> datetime:
        """When a new person first visits: any day of the world, by the week's rate, the weekday
        and the hour (the world is steady: as many arrive in its last weeks as in its first)."""
        day = self.rng.choices(range(len(self._day_cum)), cum_weights=self._day_cum)[0]
        hour = self.rng.choices(range(24), cum_weights=self._hour_cum)[0]
        at = self.t0 + timedelta(days=day, hours=hour, seconds=self.rng.uniform(0, 3600))
        return min(at, self.end - timedelta(minutes=1)).replace(
            microsecond=(at.microsecond // 1000) * 1000
        )

    def company_for(self, p: Person) -> Company:
        if self.companies and self.rng.random() < 0.45:
            return self.rng.choice(self.companies)
        for _attempt in range(50):
            name = " ".join(self.rng.choice(words) for words in COMPANY_WORDS)
            if name not in self._names:
                break
        else:  # a large population has used up the word combinations: number the name
            name = f"{name} {len(self._names) + 1}"
        self._names.add(name)
        domain = name.lower().replace(" ", "-") + ".example"
        industry = self.rng.choice(INDUSTRIES)
        # Created with its first contact (HubSpot creates companies from the email domain).
        self._company_ids += 1
        rec = CrmRecord(
            "companies",
            str(self._company_ids),
            p.index,
            self.end,
            {"name": name, "domain": domain, "industry": industry, "country": p.country},
        )
        company = Company(rec, name, domain, industry)
        self.companies.append(company)
        return company
