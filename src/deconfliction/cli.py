"""The ``deconflict`` command. The only module that prints and chooses exit codes.

Exit codes: 0 done; 1 a scenario expectation failed or a check was not clear
(``check --fail-unless-clear``); 2 the input was refused (bad file, bad position, ...).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deconfliction.client import Client, HttpClient, LocalClient
from deconfliction.errors import DeconflictionError, InvalidInput, StoreError
from deconfliction.geo import parse_geojson
from deconfliction.ledger.heads import public_key_hex
from deconfliction.ledger.verify import Entry, stored_entries, verify_record
from deconfliction.model import activity_ref, check_time
from deconfliction.report import build_report, entries
from deconfliction.service import ROOT, Service
from deconfliction.settings import Settings, settings_table
from deconfliction.stores import default_snapshot, display_name, open_store

app = typer.Typer(help="deconflict: check every activity against every party's picture.", no_args_is_help=True)
party_app = typer.Typer(help="Parties (admin).", no_args_is_help=True)
token_app = typer.Typer(help="Tokens (admin).", no_args_is_help=True)
activity_app = typer.Typer(help="Activities: propose, answer, activate, complete, cancel.", no_args_is_help=True)
app.add_typer(party_app, name="party")
app.add_typer(token_app, name="token")
ledger_app = typer.Typer(help="The indelible record: verify it.", no_args_is_help=True)
app.add_typer(activity_app, name="activity")
app.add_typer(ledger_app, name="ledger")
err = Console(stderr=True, soft_wrap=True)

Db = Annotated[str | None, typer.Option("--db", help="Store: a SQLite file path or a postgresql:// URL, opened in this process.")]
Snapshot = Annotated[
    Path | None,
    typer.Option(
        "--snapshot",
        help="The node's snapshot of the picture; default DB.snapshot beside a SQLite store, and for PostgreSQL "
        "~/.local/state/deconfliction/HOST-PORT-DATABASE.snapshot ($XDG_STATE_HOME if set).",
    ),
]
NoSnapshot = Annotated[bool, typer.Option("--no-snapshot", help="Rebuild from the whole log, and write no snapshot.")]
Server = Annotated[str | None, typer.Option("--server", envvar="DECONFLICT_SERVER", help="URL of a running server.")]
Token = Annotated[str | None, typer.Option("--token", envvar="DECONFLICT_TOKEN", help="Bearer token for --server.")]
As = Annotated[str | None, typer.Option("--as", help="With --db: act as a liaison of this party.")]
Key = Annotated[str | None, typer.Option("--key", help="The picture key for the activity's area (deconflict look).")]
NEGATIVE_POSITIONS = {"ignore_unknown_options": True}
"""For commands given a position: '-34.55, 71.015' (south, or west) is the position, not an unknown option '-3'."""
ActivityId = Annotated[str, typer.Argument(help="The activity: PROPOSER/ID, or ID for one of the party's own.")]
OtherActivity = Annotated[str, typer.Argument(help="The activity: PROPOSER/ID (each proposer names its own).")]


def _print(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _fail(exc: DeconflictionError, code: int = 2) -> NoReturn:
    where = f", {exc.field}" if exc.field else ""
    err.print(f"[red]refused[/red] ({exc.code}{escape(where)}): {escape(exc.message)}", highlight=False)
    for name, value in exc.details.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        err.print(f"  {name}: {shown}", markup=False, highlight=False)
    if exc.code == "stale_picture" and "key" in exc.details:
        # The fresh key proves only that the user was shown the refusal; what changed is theirs to judge.
        area = ",".join(str(x) for x in exc.details.get("area", []))
        err.print(
            f"review what changed (deconflict look --area {area}) and re-run with --key {exc.details['key']}",
            markup=False,
            highlight=False,
        )
    raise typer.Exit(code)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        err.print(f"cannot read {path}: {exc}")
        raise typer.Exit(2) from exc


def _run(db: str | None, server: str | None, token: str | None, party: str | None, call: Callable[[Client], Any]) -> None:
    """Print what ``call`` answers from the chosen client, or the refusal (exit 2)."""
    try:
        with _client(db, server, token, party) as client:
            _print(call(client))
    except DeconflictionError as exc:
        _fail(exc)


@contextmanager
def _client(db: str | None, server: str | None, token: str | None, party: str | None) -> Iterator[Client]:
    """The client ``--db`` or ``--server`` names, closed (its store, its connections) when the block ends."""
    if (db is None) == (server is None):
        err.print("give either --db PATH (a store on this machine) or --server URL --token TOKEN")
        raise typer.Exit(2)
    with closing(HttpClient(server, token) if server is not None else _local(str(db), party)) as client:
        yield client


def _local(db: str, party: str | None) -> LocalClient:
    return LocalClient(Service(open_store(db), settings=Settings.from_env()), party)


@app.command()
def init(
    db: Annotated[str, typer.Option("--db", help="Where to create the store: a SQLite file path or a postgresql:// URL.")],
) -> None:
    """Create a store and print {"admin_token": ...} as JSON."""
    try:
        with closing(open_store(db)) as store:
            if store.events(limit=1):
                err.print(
                    f"{display_name(db)} is initialised already; make another admin token with: "
                    f"deconflict token create --db {display_name(db)} --role admin"
                )
                raise typer.Exit(2)
            token = Service(store).create_token(ROOT, None, "admin")
            store.signing_key()  # the node's key that signs tree heads, beside the store (in it, on PostgreSQL)
    except DeconflictionError as exc:
        _fail(exc)
    _print({"admin_token": token})


@app.command()
def migrate(
    db: Annotated[str, typer.Option("--db", help="The store to upgrade: a SQLite file path or a postgresql:// URL.")],
) -> None:
    """Upgrade a store made by an older version in place, all or nothing; prints {"from": N, "to": M}. Back it up first."""
    from deconfliction.stores.migrate import migrate as upgrade

    try:
        _print(upgrade(db))
    except DeconflictionError as exc:
        _fail(exc)


def _settings(**flags: Any) -> Settings:
    try:
        return Settings.from_env(**flags)
    except DeconflictionError as exc:
        _fail(exc)


@app.command()
def serve(
    db: Annotated[str, typer.Option("--db", help="Store: a SQLite file path or a postgresql:// URL.")] = "deconfliction.db",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    tak: Annotated[
        list[str] | None,
        typer.Option("--tak", help="A TAK listener (CoT over TCP) for one party's network: PARTY:PORT; repeatable."),
    ] = None,
    tak_udp: Annotated[
        list[str] | None, typer.Option("--tak-udp", help="A TAK listener over UDP (reports only): PARTY:PORT; repeatable.")
    ] = None,
    tak_tls: Annotated[
        int | None,
        typer.Option("--tak-tls", help="A TAK listener over TLS on this port; each device's certificate names its party."),
    ] = None,
    snapshot: Snapshot = None,
    no_snapshot: NoSnapshot = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes answering on the one port, each with the whole picture (docs/deployment.md).")
    ] = 1,
) -> None:
    """Run the HTTP API (OpenAPI at /docs) on a store, and the TAK gateway's listeners if asked (docs/tak.md).

    The node starts from its snapshot and the log after it, and writes a new one as it stops (docs/deployment.md).
    """
    from deconfliction import serving
    from deconfliction.tak.gateway import Listener, check_parties

    try:
        listeners = [Listener.parse(t, "tcp") for t in tak or []] + [Listener.parse(t, "udp") for t in tak_udp or []]
        if tak_tls is not None:
            listeners.append(Listener.parse(str(tak_tls), "tls"))
        kept = _snapshot_path(db, snapshot, no_snapshot)
        if workers > 1:
            _serve_workers(db, host, port, workers, kept, bool(listeners))
            return
        service = Service(open_store(db), settings=_settings(), snapshot=kept)
    except DeconflictionError as exc:
        _fail(exc)
    try:
        check_parties(service, listeners)
    except DeconflictionError as exc:
        service.store.close()
        _fail(exc)
    if service.from_snapshot:
        err.print(f"picture from the snapshot at {kept} (the log's first {service.from_snapshot:,} entries) and the log since")
    err.print(f"deconfliction on http://{host}:{port}  (API docs at /docs), store {display_name(db)}")
    with closing(service.store):
        serving.serve(service, host, port, listeners, kept)


def _serve_workers(db: str, host: str, port: int, workers: int, snapshot: Path | None, tak: bool) -> None:
    """``serve --workers N``: the store and settings checked here, once, then the workers started."""
    from deconfliction import serving

    if tak:
        raise InvalidInput(
            "the TAK gateway's listeners run in one process: serve them with --workers 1 (on another --port), "
            "on the same store, beside this server",
            field="--workers",
        )
    _settings()
    open_store(db).close()  # a store that cannot be opened is said here once, not by every worker
    err.print(f"deconfliction on http://{host}:{port} in {workers} workers  (API docs at /docs), store {display_name(db)}")
    serving.serve_workers(db, host, port, workers, snapshot)


@app.command("snapshot")
def snapshot_(
    db: Annotated[
        str, typer.Option("--db", envvar="DECONFLICT_DB", help="Store: a SQLite file path or a postgresql:// URL.")
    ] = "deconfliction.db",
    to: Annotated[Path | None, typer.Option("--to", help="Where to write it; default where deconflict serve keeps it.")] = None,
) -> None:
    """Rebuild the picture (from the last snapshot and the log after it) and write a snapshot for a node's next start.

    A serving node runs this itself every DECONFLICT_SNAPSHOT_EVERY_S (the store named in DECONFLICT_DB, so that a
    PostgreSQL password stays off the process list).
    """
    from deconfliction.app import write_snapshot_said

    path = _snapshot_path(db, to, False)
    if path is None:
        _fail(InvalidInput("a store in memory keeps no snapshot: say where with --to", field="--to"))
    try:
        service = Service(open_store(db), settings=_settings(), snapshot=path)
    except DeconflictionError as exc:
        _fail(exc)
    with closing(service.store):
        write_snapshot_said(service, path)


def _snapshot_path(db: str, given: Path | None, off: bool) -> Path | None:
    if off:
        return None
    return given if given is not None else default_snapshot(db)


@app.command()
def demo(
    db: Annotated[str | None, typer.Option("--db", help="Store; default a fresh SQLite file in a temporary folder.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Load the demo picture, print the tokens, do not serve.")] = False,
) -> None:
    """Load the demo border picture into a fresh store, print the URL and a token per party, and serve."""
    from deconfliction.demo import load_demo

    path = db or str(Path(tempfile.mkdtemp(prefix="deconfliction-demo-")) / "demo.db")
    try:
        store = open_store(path)
    except DeconflictionError as exc:
        _fail(exc)
    with closing(store):
        try:
            if store.events(limit=1):
                err.print(f"{display_name(path)} is not empty; the demo needs a fresh store")
                raise typer.Exit(2)
            service = Service(store, settings=_settings())
            tokens = load_demo(service)
        except DeconflictionError as exc:
            _fail(exc)
        url = f"http://{host}:{port}"
        _print({"url": url, "db": display_name(path), "tokens": tokens})
        err.print(f"demo picture loaded into {display_name(path)}; the console at {url}/ (sign in with a token below)")
        err.print(f"the API docs at {url}/docs")
        for who, made in tokens.items():
            err.print(f"  {who:8} token: {made}", highlight=False)
        if not no_serve:
            from deconfliction import serving

            serving.serve(service, host, port)


@party_app.command("create")
def party_create(
    party_id: Annotated[str, typer.Argument(help="Lowercase id.")],
    name: Annotated[str, typer.Argument(help="Display name.")],
    db: Db = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Create a party."""
    _run(db, server, token, None, lambda c: c.create_party({"id": party_id, "name": name}))


@party_app.command("list")
def party_list(db: Db = None, server: Server = None, token: Token = None) -> None:
    """List the parties."""
    _run(db, server, token, None, lambda c: c.parties())


@token_app.command("create")
def token_create(
    party: Annotated[str | None, typer.Argument(help="The token's party (none: the centre's own admin or auditor).")] = None,
    role: Annotated[str, typer.Option(help="admin, liaison, viewer or auditor.")] = "liaison",
    db: Db = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Create a token and print {"token": ...}. It is shown once; the store keeps only its hash."""
    try:
        with _client(db, server, token, None) as client:
            if party is None:
                if not isinstance(client, LocalClient):
                    err.print("a token of the centre (no party) can only be made with --db")
                    raise typer.Exit(2)
                made = client.service.create_token(ROOT, None, role)
            else:
                made = client.create_token(party, role)
    except DeconflictionError as exc:
        _fail(exc)
    _print({"token": made, "party": party, "role": role})


@token_app.command("revoke")
def token_revoke(
    revoked: Annotated[str, typer.Argument(metavar="TOKEN", help="The token to revoke, as it was given out.")],
    db: Db = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Revoke a token: from now on it opens nothing, and streams opened with it end."""
    _run(db, server, token, None, lambda c: c.revoke_token(revoked))


@app.command(context_settings=NEGATIVE_POSITIONS)
def check(
    position: Annotated[str | None, typer.Argument(help="Any notation: '34.55, 71.015', MGRS, UTM, DMS.")] = None,
    kind: Annotated[str, typer.Option(help="fires, air, ground or other.")] = "other",
    radius_m: Annotated[float | None, typer.Option("--radius-m", help="Radius around the position, metres.")] = None,
    area: Annotated[Path | None, typer.Option(help="A GeoJSON file with a Polygon, instead of a position.")] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
    fail_unless_clear: Annotated[bool, typer.Option(help="Exit 1 unless the answer is clear.")] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Answer as the service would have at this past instant (ISO 8601).")
    ] = None,
) -> None:
    """Ask a check and print the answer as JSON."""
    body: dict[str, Any] = {"kind": kind}
    if as_of is not None:
        body["as_of"] = as_of
    if position is not None:
        body["position"] = position
    if radius_m is not None:
        body["radius_m"] = radius_m
    if area is not None:
        body["area"] = _read_json(area)
    try:
        with _client(db, server, token, as_party) as client:
            answer = client.check(body)
    except DeconflictionError as exc:
        _fail(exc)
    _print(answer)
    if fail_unless_clear and answer["status"] != "clear":
        raise typer.Exit(1)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A GeoJSON FeatureCollection; format in docs/usage.md.")],
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Import assets, zones, AORs and territories from GeoJSON; prints one line per feature."""
    from deconfliction.geojson_import import import_features

    collection = _read_json(file)
    try:
        with _client(db, server, token, as_party) as client:
            for line in import_features(client, collection):
                _print(line)
    except DeconflictionError as exc:
        _fail(exc)


def _plain(value: Any) -> Any:
    # YAML reads unquoted times as datetimes; the service takes ISO text, as over HTTP.
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read_document(path: Path) -> dict[str, Any]:
    """A JSON or YAML file holding one object (YAML reads JSON too)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        err.print(f"cannot read {path}: {exc}", markup=False)
        raise typer.Exit(2) from exc
    if not isinstance(data, dict):
        err.print(f"cannot read {path}: it must hold one object (kind, purpose, volumes, ...)", markup=False)
        raise typer.Exit(2)
    return dict(_plain(data))


@activity_app.command("propose")
def activity_propose(
    file: Annotated[Path, typer.Argument(help="The activity as JSON or YAML: {id?, kind, purpose, volumes, key?}.")],
    key: Annotated[str | None, typer.Option("--key", help="The picture key for its area; overrides the file's key.")] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Propose an activity. Without a current key it is refused with a fresh one: review what changed, re-run with --key."""
    body = _read_document(file)
    if key is not None:
        body["key"] = key
    _run(db, server, token, as_party, lambda c: c.propose(body))


@activity_app.command("list")
def activity_list(db: Db = None, server: Server = None, token: Token = None, as_party: As = None) -> None:
    """List the activities the party proposed or is affected by."""
    _run(db, server, token, as_party, lambda c: c.activities())


def _activity(client: Client, named: str, own: bool = True) -> tuple[str, str]:
    """(proposer, id) of an ACTIVITY argument: ``PROPOSER/ID``, or with ``own`` a plain ``ID`` of the party's own activity."""
    proposer, activity_id = activity_ref(named, "activity")
    if proposer is None:
        if not own:
            raise InvalidInput(f"whose activity {named!r}? name it as PROPOSER/ID: each proposer names its own", field="activity")
        proposer = client.own_activity(activity_id)
    return proposer, activity_id


@activity_app.command("show")
def activity_show(activity: ActivityId, db: Db = None, server: Server = None, token: Token = None, as_party: As = None) -> None:
    """Show one activity: its state, answers, who it still waits for, its deadline."""
    _run(db, server, token, as_party, lambda c: c.activity(*_activity(c, activity)))


@activity_app.command("acknowledge")
def activity_acknowledge(
    activity: OtherActivity, db: Db = None, server: Server = None, token: Token = None, as_party: As = None
) -> None:
    """Acknowledge another party's activity that affects the party: seen, and nothing against it."""
    _run(db, server, token, as_party, lambda c: c.acknowledge(*_activity(c, activity, own=False)))


@activity_app.command("object")
def activity_object(
    activity: OtherActivity,
    reason: Annotated[str, typer.Option("--reason", help="Why the party objects; the proposer sees it.")],
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Object to another party's activity that affects the party; it is not cleared while the objection stands."""
    _run(db, server, token, as_party, lambda c: c.object(*_activity(c, activity, own=False), {"reason": reason}))


@activity_app.command("activate")
def activity_activate(
    activity: ActivityId,
    key: Key = None,
    override: Annotated[
        str | None, typer.Option("--override", help="Why it starts without clearance; recorded and notified at once.")
    ] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Start a cleared activity (proposer only); an uncleared one only with --override REASON."""
    body = {k: v for k, v in (("key", key), ("override", override)) if v is not None}
    _run(db, server, token, as_party, lambda c: c.activate(*_activity(c, activity), body))


@activity_app.command("complete")
def activity_complete(
    activity: ActivityId, db: Db = None, server: Server = None, token: Token = None, as_party: As = None
) -> None:
    """Complete an active activity (proposer only)."""
    _run(db, server, token, as_party, lambda c: c.complete(*_activity(c, activity)))


@activity_app.command("cancel")
def activity_cancel(
    activity: ActivityId,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; the affected parties see it.")] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Cancel an activity that has not ended (proposer only)."""
    body = {} if reason is None else {"reason": reason}
    _run(db, server, token, as_party, lambda c: c.cancel(*_activity(c, activity), body))


@app.command()
def look(
    area: Annotated[str | None, typer.Option(help="A box: west,south,east,north in degrees.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Widen the box by this kind's buffer: patrol, movement, air, fires (or ground, other).")
    ] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Print the picture key (and with --area, what the party may see there): the proof to present with --key."""
    _run(db, server, token, as_party, lambda c: c.look(area, kind))


@app.command()
def probes(
    asker: Annotated[str | None, typer.Option(help="Only this asking party's.")] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Print the signs that another party is mapping the party's hidden assets, newest first (docs/need-to-know.md)."""
    _run(db, server, token, as_party, lambda c: c.probes(asker))


@app.command()
def events(
    cursor: Annotated[
        int | None, typer.Option(help="Go on after this sequence number; default: from now (--server), from the start (--db).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Print the events the party may see, one JSON object a line. With --server it follows live until interrupted."""
    try:
        with _client(db, server, token, as_party) as client:
            for event in client.events(cursor, limit):
                if event.get("type") == "stream.opened":
                    # On stderr: stdout holds only events, the same with --db and --server.
                    err.print(f"following events after {event['data']['cursor']}", markup=False)
                else:
                    _print(event)
    except DeconflictionError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def replay(
    files: Annotated[list[Path], typer.Argument(help="Scenario files (YAML).")],
    db: Annotated[
        str | None, typer.Option("--db", help="Store to play into; default a fresh temporary file per scenario.")
    ] = None,
) -> None:
    """Play scenario files against a fresh store; one JSON line per step. Exit 1 if an expectation fails."""
    from deconfliction.replay import ScenarioError, load_scenario, run_scenario

    failed = False
    for file in files:
        with tempfile.TemporaryDirectory(prefix="deconfliction-replay-") as tmp:
            try:
                scenario = load_scenario(file)
                with closing(open_store(db or Path(tmp) / "replay.db")) as store:
                    for outcome in run_scenario(scenario, store):
                        _print(outcome.line)
                        for failure in outcome.failures:
                            failed = True
                            err.print(f"{file}: step {outcome.line['step']}: {failure}", highlight=False)
            except ScenarioError as exc:
                _fail(exc)
    raise typer.Exit(1 if failed else 0)


@app.command()
def bench(
    sizes: Annotated[str, typer.Option(help="Comma-separated asset counts: 10k,100k,1M.")] = "10k,100k,1M",
    out: Annotated[Path, typer.Option(help="Where the JSON and PNG results go.")] = Path("benchmarks/results"),
    checks: Annotated[int, typer.Option(help="Checks per measurement.")] = 2000,
    http_seconds: Annotated[int, typer.Option(help="Seconds of HTTP load (wrk), and of each concurrent alternative.")] = 10,
    connections: Annotated[int, typer.Option(help="Concurrent HTTP connections.")] = 16,
    alternatives: Annotated[bool, typer.Option(help="Also measure PostGIS and Redis (Debian packages).")] = True,
) -> None:
    """Measure checks and ingest on a synthetic theatre, beside PostGIS and Redis; writes JSON and PNG."""
    from deconfliction.bench.run import parse_size, print_table, run_bench

    try:
        size_list = [parse_size(s) for s in sizes.split(",") if s.strip()]
    except ValueError as exc:
        err.print(f"--sizes: {exc}")
        raise typer.Exit(2) from exc
    results = run_bench(
        size_list,
        out_dir=out,
        checks=checks,
        http_s=http_seconds,
        connections=connections,
        alternatives=alternatives,
        console=err,
    )
    print_table(results, Console(width=max(160, Console().width)))
    err.print(f"results in {out / 'latest.json'} and {out / 'latest.png'}")


@app.command("bench-stores")
def bench_stores(
    checks_size: Annotated[str, typer.Option(help="Assets in the picture for the checks and ingest.")] = "100k",
    startup_size: Annotated[str, typer.Option(help="Assets in the picture for start-up.")] = "1M",
    checks: Annotated[int, typer.Option(help="Recorded checks measured per store.")] = 2000,
    batched: Annotated[int, typer.Option(help="Reports ingested in batches of 1,000.")] = 100_000,
    single: Annotated[int, typer.Option(help="Reports ingested one per transaction.")] = 1000,
    out: Annotated[Path, typer.Option(help="Where stores.json goes.")] = Path("benchmarks/results"),
) -> None:
    """SQLite and PostgreSQL side by side: durable ingest, recorded checks, start-up (PostgreSQL from Debian's packages)."""
    from deconfliction.bench.run import parse_size
    from deconfliction.bench.stores import print_stores, run_stores, save

    try:
        sizes = parse_size(checks_size), parse_size(startup_size)
    except ValueError as exc:
        err.print(f"--checks-size/--startup-size: {exc}")
        raise typer.Exit(2) from exc
    results = run_stores(checks_size=sizes[0], startup_size=sizes[1], checks=checks, batched=batched, single=single, console=err)
    print_stores(results, Console(width=max(120, Console().width)))
    err.print(f"results in {save(results, out)}")


@app.command("bench-tak")
def bench_tak(
    devices: Annotated[int, typer.Option(min=1, help="Concurrent TAK connections.")] = 1000,
    interval_s: Annotated[float, typer.Option(help="Each device sends its position this often, seconds.")] = 1.0,
    duration_s: Annotated[float, typer.Option(help="How long the devices send, seconds.")] = 30.0,
) -> None:
    """Many TAK devices on one listener (loopback): events per second taken, connections dropped, report latency."""
    from deconfliction.bench.tak import run_tak

    _print(run_tak(devices=devices, interval_s=interval_s, duration_s=duration_s))


@app.command("crash-campaign")
def crash_campaign(
    kills: Annotated[int, typer.Option(min=1, help="Rounds of traffic ended by SIGKILL.")] = 20,
    clients: Annotated[int, typer.Option(min=1, help="Clients streaming reports and checks in each round.")] = 4,
    min_s: Annotated[float, typer.Option(help="Shortest time before a kill, seconds.")] = 0.5,
    max_s: Annotated[float, typer.Option(help="Longest time before a kill, seconds.")] = 3.0,
    db: Annotated[
        str | None, typer.Option("--db", help="A fresh store to run on (default a SQLite file in a temporary folder).")
    ] = None,
) -> None:
    """Kill the server with SIGKILL mid-traffic, many times; after each restart every acknowledged write must be there."""
    from deconfliction.bench.crash import BrokenPromise, run_crash

    try:
        _print(run_crash(kills=kills, clients=clients, min_s=min_s, max_s=max_s, db=db))
    except BrokenPromise as exc:
        err.print(f"broken: {exc}", markup=False)
        raise typer.Exit(1) from exc


@app.command()
def soak(
    minutes: Annotated[float, typer.Option(min=0.05, help="How long the load runs.")] = 30.0,
    reports_per_s: Annotated[float, typer.Option(min=4, help="Single position reports a second (batches come on top).")] = 100.0,
    checks_per_s: Annotated[float, typer.Option(min=4, help="Point checks a second.")] = 100.0,
    units: Annotated[int, typer.Option(min=8, help="Units per force in the picture, besides the demo's.")] = 2000,
    sample_s: Annotated[
        float, typer.Option(min=0.5, help="Read the server's memory and descriptors this often, seconds.")
    ] = 10.0,
    out: Annotated[Path | None, typer.Option(help="Write the samples and the verdict here as JSON.")] = None,
) -> None:
    """A sustained mix of reports, checks and event streams; memory, descriptors and check p99 watched until it ends."""
    from deconfliction.bench.soak import Plan, run_soak

    def progress(sample: dict[str, Any]) -> None:
        err.print(
            f"{sample['t_s']:>7.0f} s  rss {sample['rss_mib']} MiB  fds {sample['fds']}  entries {sample['entries']}  "
            f"checks p99 {sample['check_p99_ms']} ms  failures {sample['failure_count']}"
        )

    plan = Plan(minutes=minutes, reports_per_s=reports_per_s, checks_per_s=checks_per_s, units=units, sample_s=sample_s)
    result = run_soak(plan, progress)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
    _print({key: value for key, value in result.items() if key != "samples"})
    if result["broken"]:
        raise typer.Exit(1)


@app.command(context_settings=NEGATIVE_POSITIONS)
def readback(position: Annotated[str, typer.Argument(help="A position in any notation.")], db: Db = None) -> None:
    """Read a position back in canonical form (lat/lon, MGRS, and the border if --db has territories)."""
    try:
        with closing(open_store(db or ":memory:")) as store:
            _print(Service(store).read_position(position))
    except DeconflictionError as exc:
        _fail(exc)


@app.command()
def settings() -> None:
    """List every setting with its default and its environment variable."""
    table = Table("setting", "default", "variable", "meaning")
    for name, default, help_ in settings_table():
        table.add_row(name, str(default), f"DECONFLICT_{name.upper()}", help_)
    Console(width=max(140, Console().width)).print(table)


@app.command()
def asof(
    instant: Annotated[str, typer.Argument(help="The past instant, ISO 8601 with a time zone.")],
    area: Annotated[str | None, typer.Option(help="Only this box: west,south,east,north in degrees.")] = None,
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Print the picture as the party could see it at INSTANT, rebuilt from the record."""
    _run(db, server, token, as_party, lambda c: c.look(area, None, instant))


@app.command()
def report(
    area: Annotated[Path, typer.Option(help="A GeoJSON file with the area (Polygon or MultiPolygon).")],
    start: Annotated[str, typer.Option("--from", help="The start of the period, ISO 8601.")],
    end: Annotated[str, typer.Option("--to", help="The end of the period, ISO 8601.")],
    at: Annotated[
        list[str] | None, typer.Option("--at", help="Instants to map the area at (repeatable); default: the end.")
    ] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    db: Db = None,
    server: Server = None,
    token: Token = None,
    as_party: As = None,
) -> None:
    """Write a self-contained HTML investigation report: maps, a timeline, and proofs tying each line to the signed record."""
    try:
        geometry = parse_geojson(_read_json(area), "area", ("Polygon", "MultiPolygon"))
        first, last = check_time(start, "from"), check_time(end, "to")
        instants = [check_time(t, "at") for t in at] if at else [last]
        with _client(db, server, token, as_party) as client:
            assert isinstance(client, HttpClient | LocalClient)
            page = build_report(client, geometry, first, last, instants)
        out.write_text(page, encoding="utf-8")
    except DeconflictionError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(StoreError(f"cannot write {out}: {exc}"))
    _print({"report": str(out), "bytes": len(page.encode())})


@ledger_app.command("verify")
def ledger_verify(
    db: Db = None,
    server: Annotated[
        str | None, typer.Option("--server", "--url", envvar="DECONFLICT_SERVER", help="URL of a running server.")
    ] = None,
    token: Token = None,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="The node's Ed25519 key (hex) to hold heads to; default: the one served.")
    ] = None,
) -> None:
    """Recompute the Merkle tree from every entry and check every signed tree head and their consistency.

    Prints {ok, entries, heads, problems}; exit 0 only if everything holds, 1 naming the first bad entry or head.
    With --db the store file is read as it is, without starting a service on it (which a damaged log could stop).
    """
    if (db is None) == (server is None):
        err.print("give either --db PATH (a store on this machine) or --server URL --token TOKEN")
        raise typer.Exit(2)
    try:
        if server is not None:
            client = HttpClient(server, token)
            key = public_key or client.public_key()

            def proof(m: int, n: int) -> list[bytes]:  # the server's own proofs, held to the signed roots
                return [bytes.fromhex(h) for h in client.consistency_proof(m, n)["consistency_path"]]

            verdict = verify_record(_served_entries(client), client.ledger_heads(), key, proof)
        else:
            assert db is not None
            if "://" not in db and not Path(db).exists():  # a verifier reads what is there; it makes no store and no key
                raise StoreError(f"there is no store at {db}")
            with closing(open_store(db)) as store:
                key = public_key or public_key_hex(store.signing_key(create=False))
                verdict = verify_record(stored_entries(store), store.heads(), key)
    except DeconflictionError as exc:
        _fail(exc)
    _print({"ok": verdict.ok, "entries": verdict.entries, "heads": verdict.heads, "problems": verdict.problems})
    if not verdict.ok:
        raise typer.Exit(1)


def _served_entries(client: HttpClient) -> Iterator[Entry]:
    for e in entries(client):
        yield Entry(e["index"], bytes.fromhex(e["leaf_hex"]), bytes.fromhex(e["leaf_hash"]))


# ---------------------------------------------------------------------------- private cross-check (docs/psi.md)

psi_app = typer.Typer(
    help="Private cross-check with another party's node: neither side shows its places (docs/psi.md).", no_args_is_help=True
)
app.add_typer(psi_app, name="psi")


@psi_app.command("ask")
def psi_ask(
    activity: Annotated[
        Path,
        typer.Option("--activity", help="The activity: JSON or YAML with volumes (as for activity propose), or GeoJSON shapes."),
    ],
    kind: Annotated[
        str | None, typer.Option(help="fires, air, ground, other, patrol or movement; default: the file's kind.")
    ] = None,
    server: Server = None,
    token: Token = None,
    pad: Annotated[bool, typer.Option(help="Pad the cells sent with dummies, so the owner learns only a size bucket.")] = True,
    fail_if_meets: Annotated[bool, typer.Option(help="Exit 1 if the activity meets the owner's places.")] = False,
) -> None:
    """Ask an owner node whether an activity meets its protected places; print {meets, cells_met, asker_cells, ...}.

    The owner learns how many cells were sent; this side learns how many of them meet the
    owner's buffered places, never where those are.
    """
    from deconfliction import psi
    from deconfliction.api.psi import ask_remote
    from deconfliction.errors import InvalidInput

    if server is None or token is None:
        err.print("give --server URL and --token TOKEN (a token of the owner node for this party)")
        raise typer.Exit(2)
    doc = _read_document(activity)
    try:
        chosen = kind if kind is not None else doc.get("kind")
        if chosen is None:
            raise InvalidInput("give --kind, or a kind in the activity file", field="kind")
        places = psi.read_places(doc)
        answer = ask_remote(server, token, lambda resolution: psi.activity_cells(places, resolution), str(chosen), pad=pad)
    except DeconflictionError as exc:
        _fail(exc)
    _print(answer)
    if fail_if_meets and answer["meets"]:
        raise typer.Exit(1)


def _bench_sets(owner_n: int, asker_n: int, met: int, resolution: int) -> tuple[list[str], list[str]]:
    """Real H3 cells: the owner's a disk of cells near the border, the asker's ``met`` of those and the rest far away."""
    import h3

    def disk(lat: float, lon: float, n: int) -> list[str]:
        centre, k = h3.latlng_to_cell(lat, lon, resolution), 0
        while 3 * k * (k + 1) + 1 < n:
            k += 1
        ordered = sorted(h3.grid_disk(centre, k), key=lambda c: (h3.grid_distance(centre, c), c))
        return ordered[:n]

    owner = disk(34.55, 71.0, owner_n)
    asker = owner[:met] + disk(35.5, 72.0, asker_n - met)
    return owner, asker


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[len(ordered) // 2], 4)


def _bench_in_process(owner: list[str], asker: list[str], repeat: int, pad: bool) -> dict[str, Any]:
    from deconfliction import psi

    runs = [psi.exchange(owner, asker, pad=pad) for _ in range(repeat)]
    last = runs[-1]
    return {
        "cells_met": last.meeting.cells_met,
        "asker_request_s": _median([r.request_s for r in runs]),
        "owner_answer_s": _median([r.answer_s for r in runs]),
        "asker_result_s": _median([r.meeting_s for r in runs]),
        "total_s": _median([r.total_s for r in runs]),
        "request_bytes": last.request_bytes,
        "setup_bytes": last.setup_bytes,
        "response_bytes": last.response_bytes,
        "total_bytes": last.request_bytes + last.setup_bytes + last.response_bytes,
    }


def _bench_http(owner: list[str], asker: list[str], repeat: int, pad: bool, resolution: int) -> dict[str, Any]:
    """A ``deconflict serve`` owner node in a second process on loopback, offering ``owner`` from a cells file."""
    import os
    import shutil
    import socket
    import subprocess
    import time

    import httpx

    from deconfliction.api.psi import ask_remote
    from deconfliction.stores import SQLiteStore

    command = shutil.which("deconflict", path=str(Path(sys.executable).parent)) or shutil.which("deconflict")
    if command is None:
        raise StoreError("cannot find the deconflict command to start the owner node")
    with tempfile.TemporaryDirectory(prefix="deconfliction-psi-bench-") as tmp:
        db, cells = Path(tmp) / "owner.db", Path(tmp) / "cells.json"
        store = SQLiteStore(db)
        service = Service(store)
        service.create_party(ROOT, {"id": "asker", "name": "Asker"})
        token = service.create_token(ROOT, "asker", "viewer")
        store.close()
        cells.write_text(json.dumps({"resolution": resolution, "cells": owner}), encoding="utf-8")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        env = {k: v for k, v in os.environ.items() if not k.startswith("DECONFLICT_")}
        env.update(
            DECONFLICT_PSI_PLACES=str(cells),
            DECONFLICT_PSI_PAD="1" if pad else "0",
            DECONFLICT_PSI_RESOLUTION=str(resolution),
            DECONFLICT_PSI_BURST=str(repeat + 1),
            DECONFLICT_PSI_MAX_ASKER_CELLS=str(max(16_384, 2 * len(asker))),
        )
        url = f"http://127.0.0.1:{port}"
        log = (Path(tmp) / "server.log").open("wb")
        process = subprocess.Popen(
            [command, "serve", "--db", str(db), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise StoreError(f"the owner node did not start: {(Path(tmp) / 'server.log').read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            runs = []
            with httpx.Client(base_url=url, timeout=120.0) as http:
                for _ in range(repeat + 1):  # the first warms the node's cell cache and the connection
                    runs.append(ask_remote(url, token, lambda _r: frozenset(asker), "fires", pad=pad, http=http))
            runs = runs[1:]
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
    return {
        "cells_met": runs[-1]["cells_met"],
        "total_s": _median([r["elapsed_s"] for r in runs]),
        "bytes_sent": runs[-1]["bytes_sent"],
        "bytes_received": runs[-1]["bytes_received"],
        "total_bytes": runs[-1]["bytes_sent"] + runs[-1]["bytes_received"],
    }


@psi_app.command("bench")
def psi_bench(
    owner_cells: Annotated[int, typer.Option(min=1, help="Cells of the owner's places.")] = 10_000,
    asker_cells: Annotated[int, typer.Option(min=1, help="Cells of the asker's activity.")] = 1_000,
    met: Annotated[int, typer.Option(min=0, help="How many of the asker's cells are the owner's.")] = 100,
    repeat: Annotated[int, typer.Option(min=1, help="Exchanges per measurement; medians are printed.")] = 5,
    http: Annotated[bool, typer.Option(help="Also over HTTP, with an owner node in a second process on loopback.")] = True,
    pad: Annotated[bool, typer.Option(help="Pad both sets to their size buckets (default off: the exact sizes asked).")] = False,
    resolution: Annotated[int, typer.Option(help="H3 resolution of the cells.")] = 9,
) -> None:
    """Measure one private cross-check (time and bytes), in process and between two processes over HTTP; print JSON."""
    from deconfliction import psi
    from deconfliction.bench.run import machine
    from deconfliction.errors import InvalidInput

    try:
        psi.check_resolution(resolution)
        if met > min(owner_cells, asker_cells):
            raise InvalidInput("--met cannot be more than either set", field="met")
        owner, asker = _bench_sets(owner_cells, asker_cells, met, resolution)
        result: dict[str, Any] = {
            "machine": machine(),
            "owner_cells": len(owner),
            "asker_cells": len(asker),
            "met": met,
            "padded": pad,
            "fpr": psi.DEFAULT_FPR,
            "repeat": repeat,
        }
        result["in_process"] = _bench_in_process(owner, asker, repeat, pad)
        if http:
            result["http"] = _bench_http(owner, asker, repeat, pad, resolution)
    except DeconflictionError as exc:
        _fail(exc)
    _print(result)


if __name__ == "__main__":  # pragma: no cover
    app()
