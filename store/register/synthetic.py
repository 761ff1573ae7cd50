"""Deterministic synthetic feeds: the demo store, tests and benchmarks. Nobody real is in here."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from handlers.vocabulary import format_ref
from store.register.refs import references

GIVEN_F = (
    "Amy",
    "Olivia",
    "Isla",
    "Ava",
    "Mia",
    "Ivy",
    "Lily",
    "Freya",
    "Sophia",
    "Grace",
    "Ella",
    "Rosie",
    "Poppy",
    "Evie",
    "Zara",
    "Aisha",
    "Maya",
    "Hannah",
    "Chloe",
    "Niamh",
    "Leah",
    "Erin",
    "Ruby",
    "Nadia",
)
GIVEN_M = (
    "Noah",
    "Oliver",
    "Leo",
    "George",
    "Arthur",
    "Muhammad",
    "Harry",
    "Jack",
    "Oscar",
    "Charlie",
    "Theo",
    "Finley",
    "Jacob",
    "Alfie",
    "Ethan",
    "Kai",
    "Reuben",
    "Dylan",
    "Samuel",
    "Adam",
    "Ibrahim",
    "Rory",
)
FAMILY = (
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Khan",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "Okafor",
    "Nowak",
    "Begum",
    "Ali",
    "Murphy",
    "O'Brien",
    "Kelly",
    "Price",
    "Bennett",
)
AUTHORITIES = (("Northshire", "NS"), ("Southvale", "SV"), ("Eastmere", "EM"), ("Westbrook", "WB"))
SERVICES = (
    ("Social worker", "Children's Services", "Children's social care"),
    ("School nurse", "School Health Service", "School nursing"),
    ("Teacher", "Primary School", "Education"),
    ("Health visitor", "Community Health Trust", "Health visiting"),
    ("GP", "Medical Practice", "Primary care"),
    ("Police officer", "Police Public Protection Unit", "Policing"),
    ("A&E clinician", "General Hospital", "Emergency care"),
    ("Youth offending worker", "Youth Justice Service", "Youth justice"),
)
OUTWARD = {
    "Northshire": ("NS1", "NS2", "NS3"),
    "Southvale": ("SV1", "SV4"),
    "Eastmere": ("EM2", "EM5"),
    "Westbrook": ("WB1", "WB7"),
}


@dataclass(frozen=True)
class DemoExamples:
    keyed: str
    demographic: str
    shielded: str
    practitioner_id: str
    duty_manager_id: str
    admin_id: str


def _postcode(rng: random.Random, authority: str) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return (
        f"{rng.choice(OUTWARD.get(authority, ('ZZ1',)))} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    )


class SyntheticRegister:
    """A seeded register: the same arguments always give the same rows."""

    def __init__(
        self,
        children: int = 3000,
        practitioners_per_authority: int = 40,
        seed: int = 2026,
        today: date = date(2026, 11, 1),
    ) -> None:
        self.n_children = children
        self.per_authority = practitioners_per_authority
        self.seed = seed
        self.today = today

    def practitioner_ids(self) -> list[tuple[str, str]]:
        """(id, authority) of every practitioner with the 'practitioner' role."""
        return [(f"{code}-P{i:04d}", name) for name, code in AUTHORITIES for i in range(1, self.per_authority + 1)]

    def practitioners(self) -> Iterator[list[str]]:
        rng = random.Random(self.seed)
        for name, code in AUTHORITIES:
            for i in range(1, self.per_authority + 1):
                role, org, _ = SERVICES[(i - 1) % len(SERVICES)]
                given, family = rng.choice(GIVEN_F + GIVEN_M), rng.choice(FAMILY)
                yield [
                    f"{code}-P{i:04d}",
                    given,
                    family,
                    role,
                    f"{name} {org}",
                    name,
                    f"0161 496 {rng.randint(0, 9999):04d}",
                    f"{given}.{family}.{i}@{code.lower()}.example".lower().replace("'", ""),
                    "practitioner",
                ]
            yield [
                f"{code}-DM01",
                "Duty",
                f"Manager {code}",
                "Duty manager",
                f"{name} Children's Services",
                name,
                "0161 496 0100",
                f"duty.{code.lower()}@{code.lower()}.example",
                "duty_manager;practitioner",
            ]
            yield [
                f"{code}-DM02",
                "Deputy",
                f"Manager {code}",
                "Duty manager",
                f"{name} Children's Services",
                name,
                "0161 496 0101",
                f"deputy.{code.lower()}@{code.lower()}.example",
                "duty_manager;practitioner",
            ]
        yield [
            "ADMIN-01",
            "Ada",
            "Admin",
            "Service administrator",
            "Signpost Operations",
            AUTHORITIES[0][0],
            "0161 496 0200",
            "ada.admin@signpost.example",
            "admin",
        ]

    def children(self) -> Iterator[tuple[int, list[str]]]:
        rng = random.Random(self.seed + 1)
        refs = references(999_000_000 + 100)
        span = 18 * 365
        for index in range(self.n_children):
            ref = next(refs)
            authority = AUTHORITIES[index % len(AUTHORITIES)][0]
            female = rng.random() < 0.5
            given = rng.choice(GIVEN_F if female else GIVEN_M)
            if rng.random() < 0.2:
                given += " " + rng.choice(GIVEN_F if female else GIVEN_M)
            family = rng.choice(FAMILY)
            aliases = ""
            if rng.random() < 0.08:
                aliases = f"{given.split()[0]} {rng.choice(FAMILY)}"
            dob = self.today - timedelta(days=rng.randint(30, span))
            shielded = index % 50 == 12  # 2 %, and every authority has some even in a small register
            yield (
                ref,
                [
                    f"{ref}",
                    given,
                    family,
                    aliases,
                    dob.isoformat(),
                    "F" if female else "M",
                    _postcode(rng, authority),
                    authority,
                    "true" if shielded else "false",
                ],
            )

    def involvements(self) -> Iterator[list[str]]:
        rng = random.Random(self.seed + 2)
        by_authority: dict[str, list[str]] = {}
        for pid, authority in self.practitioner_ids():
            by_authority.setdefault(authority, []).append(pid)
        for ref, row in self.children():
            dob = date.fromisoformat(row[4])
            people = by_authority[row[7]]
            count = rng.choice((0, 1, 1, 2, 2, 3, 4))
            for n, pid in enumerate(rng.sample(people, count)):
                started = dob + timedelta(days=rng.randint(0, max(1, (self.today - dob).days - 1)))
                ended = ""
                if rng.random() < 0.35 and (self.today - started).days > 30:
                    ended = (started + timedelta(days=rng.randint(30, (self.today - started).days))).isoformat()
                service = SERVICES[(int(pid[-4:]) - 1) % len(SERVICES)][2]
                yield [f"{ref}", pid, service, started.isoformat(), ended, "true" if n == 0 and not ended else "false"]

    def examples(self) -> DemoExamples:
        """Three commands that work on this register, for the console's greeting."""
        involved = {row[0] for row in self.involvements()}
        keyed = demographic = shielded = ""
        for ref, row in self.children():
            if row[7] != AUTHORITIES[0][0]:
                continue
            if (self.today - date.fromisoformat(row[4])).days > 17 * 365:
                continue  # near 18: retention would archive it, and the example would stop working
            if row[8] == "true" and not shielded:
                shielded = format_ref(ref)  # as README and every answer show a reference
            elif row[8] == "false" and f"{ref}" in involved and not row[3]:
                if not keyed:
                    keyed = format_ref(ref)
                elif not demographic:
                    dob = date.fromisoformat(row[4])
                    demographic = f"{row[1]} {row[2]} {dob:%d/%m/%Y} {row[6]}"
            if keyed and demographic and shielded:
                break
        return DemoExamples(
            keyed, demographic, shielded, f"{AUTHORITIES[0][1]}-P0001", f"{AUTHORITIES[0][1]}-DM01", "ADMIN-01"
        )


HEADERS = {
    "practitioners.csv": "practitioner_id,given_name,family_name,role,organisation,local_authority,phone,email,roles",
    "children.csv": "child_ref,given_names,family_name,aliases,date_of_birth,sex,postcode,local_authority,shielded",
    "involvements.csv": "child_ref,practitioner_id,service,started,ended,lead_professional",
}


def to_csv(header: str, rows: Iterator[list[str]]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    buffer.write(header + "\n")
    writer.writerows(rows)
    return buffer.getvalue()


def feeds_text(register: SyntheticRegister) -> dict[str, str]:
    """The register as the three feed files' text."""
    return {
        "practitioners.csv": to_csv(HEADERS["practitioners.csv"], register.practitioners()),
        "children.csv": to_csv(HEADERS["children.csv"], (row for _, row in register.children())),
        "involvements.csv": to_csv(HEADERS["involvements.csv"], register.involvements()),
    }
