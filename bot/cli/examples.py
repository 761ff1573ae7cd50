"""One example per `signpost` sub-command, shown at the end of its ``--help`` (tests check that every
sub-command has one, and that each names a real command)."""

from __future__ import annotations

from datetime import date

_NEXT_YEAR = date.today().year + 1  # dated examples stay ahead of the clock: a past switch-off is refused

EXAMPLES: dict[str, tuple[str, ...]] = {
    "run": (
        "signpost run --host 127.0.0.1 --port 3000",
        "signpost run --host 0.0.0.0 --port 3000 --workers auto   # PostgreSQL, Slack HTTP mode or Teams",
    ),
    "console": (
        "signpost console --as NS-DM01",
        "printf 'help\\n' | signpost console   # scripted: one message a line",
    ),
    "seed-demo": ("signpost seed-demo --if-empty",),
    "import": ("signpost import practitioners.csv children.csv involvements.csv",),
    "match": ("signpost match roll.csv --as ADMIN-01 --top 3 > matches.csv",),
    "totp enrol": (
        "signpost totp enrol NS-P0001   # at a terminal: the QR code and secret are shown there",
        "signpost totp enrol NS-P0001 --secret-file ~/ns-p0001.secret   # from a script: a new file only you read",
    ),
    "totp reset": ("signpost totp reset NS-P0001",),
    "practitioner list": ("signpost practitioner list --authority Northshire",),
    "practitioner unlink": ("signpost practitioner unlink NS-P0001 --platform slack",),
    "practitioner leave": ("signpost practitioner leave NS-P0001",),
    "practitioner return": ("signpost practitioner return NS-P0001   # then: signpost totp enrol NS-P0001",),
    "audit export": ("signpost audit export --since 01/11/2026 --format csv > audit.csv",),
    "audit verify": ("signpost audit verify --checkpoint checkpoint-2026-11-01.note",),
    "audit checkpoint": ("signpost audit checkpoint > checkpoint-$(date +%F).note",),
    "audit sar": ("signpost audit sar '999 000 1006' --format json",),
    "retention run": (f"signpost retention run --dry-run --as-of 01/12/{_NEXT_YEAR}",),
    "backup": ("signpost backup /var/backups/signpost-$(date +%F).db",),
    "keys rotate": ("signpost keys rotate   # with every replica stopped; start them again after",),
    "decommission schedule": (
        f"signpost decommission schedule --switch-off 31/03/{_NEXT_YEAR} --destroy-by 30/05/{_NEXT_YEAR}",
    ),
    "decommission status": ("signpost decommission status",),
    "decommission cancel": ("signpost decommission cancel",),
    "decommission certificate": ("signpost decommission certificate --out certificate.json",),
    "decommission destroy": ("signpost decommission destroy",),
    "teams package": (
        (
            "signpost teams package --out signpost-teams.zip --bot-id 00000000-0000-0000-0000-000000000000 "
            "--website-url https://signpost.example.org"
        ),
    ),
    "report transparency": ("signpost report transparency --month 2026-11 --format html > transparency.html",),
    "db upgrade": ("signpost db upgrade   # once per release, before starting the replicas",),
    "db current": ("signpost db current || echo 'not up to date: the line above says why'",),
    "db history": ("signpost db history",),
    "db check": ("signpost db check --file /var/backups/signpost-2026-11-01.db   # before trusting a backup",),
    "db grant-runtime": (
        "SIGNPOST_DATABASE_URL=postgresql+asyncpg://signpost_owner@db/signpost \\",
        "  signpost db grant-runtime signpost_app",
    ),
}
