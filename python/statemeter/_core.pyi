"""Type stubs for the native core `statemeter._core`. Import from `statemeter`, not from here."""

import datetime as _dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from os import PathLike
from types import TracebackType
from typing import Any, Literal, Self, TypeAlias, overload

from statemeter.parquet import ExportResult

__version__: str
_build: str  # "release" or "debug": the extension's build profile (benchmarks record it)

Tag: TypeAlias = Literal["stateless", "stateful"]
StateKind: TypeAlias = Literal["content", "conversation", "environment", "memory", "runtime"]
StateHolder: TypeAlias = Literal["provider", "client", "unknown"]
Kind: TypeAlias = Literal["session_start", "session_end", "model_call", "tool_call", "state_op"]
Status: TypeAlias = Literal["ok", "error", "cancelled"]

class StatemeterError(Exception):
    """Base of every error statemeter raises."""

class ValidationError(StatemeterError, ValueError):
    """Bad input; the message starts with the field's name. Nothing was written."""

    field: str

class RulesetError(StatemeterError):
    """A ruleset file or text that cannot be used."""

class ContractError(StatemeterError):
    """A contract or price table that cannot be used."""

class LedgerError(StatemeterError):
    """Storage failed: cannot open, write or read the ledger."""

class IntegrityError(StatemeterError):
    """The ledger contradicts its hash chain: tampered or broken."""

class Evidence:
    """One rule that matched an event."""

    @property
    def rule(self) -> str: ...
    @property
    def tag(self) -> Tag: ...
    @property
    def signal(self) -> str:
        """The field or header the rule looked at, e.g. ``request.previous_response_id``."""
    @property
    def explain(self) -> str: ...
    @property
    def state(self) -> StateKind | None:
        """The kind of state the rule concerns (``conversation``, ``runtime``, ``memory``,
        ``environment``, ``content``), or ``None`` for a rule that only notes a fact (prompt
        caching, retention, no state signal)."""
    def to_dict(self) -> dict[str, str | None]:
        """rule, tag, signal, explain and state."""

class Classification:
    """How one event was classified."""

    @property
    def tag(self) -> Tag: ...
    @property
    def consumes_state(self) -> bool:
        """The event uses context held outside the request."""
    @property
    def creates_state(self) -> bool:
        """The event leaves state later interactions can use."""
    @property
    def state_holder(self) -> StateHolder | None:
        """Whose infrastructure holds the state: ``provider``, ``client``, or ``unknown`` (the
        server that answered holds it, but its operator is not known: an unrecognised host no
        venue or provider mapping names)."""
    @property
    def state_kinds(self) -> list[StateKind]:
        """The kinds of state the event consumes, creates or acts on, from the matching rules:
        sorted, unique; ``[]`` when none (and for events recorded before kinds existed)."""
    @property
    def session_stateful(self) -> bool:
        """Whether this event makes its session stateful (input of ``session_tag``)."""
    @property
    def ruleset(self) -> str:
        """The classifying ruleset's name (``default`` and ``strict`` are the built-ins: no
        other ruleset may take them)."""
    @property
    def ruleset_digest(self) -> str:
        """The first 16 hex digits of the SHA-256 of that ruleset's evidence catalogue
        (``Ruleset.digest``): tells apart rulesets, and versions of one ruleset."""
    @property
    def evidence(self) -> list[Evidence]: ...
    def to_dict(self) -> dict[str, Any]:
        """tag, consumes_state, creates_state, state_holder, state_kinds and evidence (dicts)."""

class Ruleset:
    """A compiled set of classification rules (TOML)."""

    @staticmethod
    def default() -> Ruleset:
        """Built-in: a call is stateful when it consumes, or reads, updates or deletes,
        provider-held state of kind conversation, runtime, memory or environment.
        Referencing provider-held content (file ids, vector stores, knowledge bases, cached
        content) and creating state alone stay stateless; prompt caching is no state."""
    @staticmethod
    def strict() -> Ruleset:
        """Built-in: any provider-held state, of any kind (content included), consumed,
        created or acted on, makes a call stateful; client-held state makes sessions
        stateful."""
    @staticmethod
    def from_toml(text: str) -> Ruleset:
        """Parse ruleset TOML. Raises `RulesetError`."""
    @staticmethod
    def load(path: str | PathLike[str]) -> Ruleset:
        """Read a ruleset TOML file. Raises `RulesetError`."""
    @property
    def name(self) -> str:
        """``default`` and ``strict`` for the built-ins; a ruleset file may not take those
        names (`RulesetError`), and is ``custom`` when it gives none."""
    @property
    def digest(self) -> str:
        """The first 16 hex digits of the SHA-256 of the evidence catalogue: what each
        classification under this ruleset records as ``ruleset_digest``."""
    @property
    def rules(self) -> list[dict[str, str | None]]:
        """The rules in evaluation order: id, tag, signal, explain and state (the kind of
        state the rule concerns, or ``None``)."""

def classify(event: Mapping[str, Any], ruleset: Ruleset | None = None) -> Classification:
    """Classify one raw event mapping without a ledger. Raises `ValidationError`."""

class Event:
    """One recorded event. Fields that do not belong to its kind are ``None``."""

    @property
    def id(self) -> str: ...
    @property
    def seq(self) -> int | None:
        """Position in the ledger; ``None`` until written."""
    @property
    def kind(self) -> Kind: ...
    @property
    def ts(self) -> int:
        """Nanoseconds since the Unix epoch."""
    @property
    def duration_ns(self) -> int | None: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def tenant(self) -> str | None: ...
    @property
    def venue(self) -> str | None: ...
    @property
    def status(self) -> Status | None: ...
    @property
    def runtime(self) -> str | None: ...
    @property
    def runtime_session_id(self) -> str | None: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def api(self) -> str | None: ...
    @property
    def endpoint(self) -> str | None: ...
    @property
    def request(self) -> dict[str, Any] | None: ...
    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def cached_tokens(self) -> int | None: ...
    @property
    def tool(self) -> str | None: ...
    @property
    def tool_kind(self) -> str | None: ...
    @property
    def effect(self) -> Literal["none", "read", "write"] | None: ...
    @property
    def mcp_session_id(self) -> str | None: ...
    @property
    def op(self) -> Literal["read", "write", "delete"] | None: ...
    @property
    def store(self) -> str | None: ...
    @property
    def holder(self) -> Literal["client", "provider"] | None: ...
    @property
    def scope(self) -> Literal["session", "user", "global"] | None: ...
    @property
    def key(self) -> str | None: ...
    @property
    def bytes(self) -> int | None: ...
    @property
    def attrs(self) -> dict[str, Any]: ...
    @property
    def tag(self) -> Tag: ...
    @property
    def consumes_state(self) -> bool: ...
    @property
    def creates_state(self) -> bool: ...
    @property
    def state_holder(self) -> StateHolder | None:
        """``provider``, ``client`` or ``unknown`` (a server whose operator is not known)."""
    @property
    def state_kinds(self) -> list[StateKind]:
        """The kinds of state the event consumes, creates or acts on: sorted, unique; ``[]``
        when none (and for events recorded before kinds existed)."""
    @property
    def evidence(self) -> list[Evidence]: ...
    @property
    def ruleset(self) -> str:
        """The name of the ruleset that classified the event."""
    @property
    def ruleset_digest(self) -> str:
        """The digest of that ruleset's evidence catalogue (``Ruleset.digest``)."""
    @property
    def classification(self) -> Classification: ...
    @property
    def session_tag(self) -> Tag | None:
        """The session's tag, derived when read from a ledger; ``None`` on a fresh event."""
    def to_dict(self) -> dict[str, Any]: ...
    def _repr_html_(self) -> str: ...

class EventTable:
    """Events in ``seq`` order."""

    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, index: int, /) -> Event: ...
    @overload
    def __getitem__(self, index: slice, /) -> EventTable: ...
    def __iter__(self) -> Iterator[Event]: ...
    def filter(
        self, *, kind: Kind | None = None, session_id: str | None = None, tag: Tag | None = None
    ) -> EventTable: ...
    def to_pylist(self) -> list[dict[str, Any]]:
        """One dict per event: record fields, seq, classification (tag, consumes_state,
        creates_state, state_holder, state_kinds, evidence) and session_tag."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Arrow PyCapsule stream (built in Rust); column types in docs/arrow.md."""
    def to_pandas(self) -> Any:
        """pandas DataFrame (``pip install statemeter[analysis]``)."""
    def to_polars(self) -> Any:
        """polars DataFrame (``pip install statemeter[analysis]``)."""
    def plot(self, **kwargs: Any) -> Any:
        """`statemeter.plot.usage_over_time` of these events."""
    def _repr_html_(self) -> str: ...
    def _counts(self) -> list[tuple[str, str, str, int]]: ...

class SessionTable:
    """One row per session (`Ledger.sessions()`), in the order the sessions began."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> dict[str, Any]: ...
    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def to_pylist(self) -> list[dict[str, Any]]:
        """session_id, agent, tenant, venue, runtime, runtime_session_id, start, end, last_ts,
        duration_ns, status, events, model_calls, tool_calls, state_ops, tool_errors,
        input_tokens, output_tokens, cached_tokens, stateful_events, inner_model_calls,
        inner_tool_calls, inner_state_ops, inner_input_tokens, inner_output_tokens,
        inner_cached_tokens, session_tag, first_seq."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def to_pandas(self) -> Any: ...
    def to_polars(self) -> Any: ...
    def _repr_html_(self) -> str: ...

class SqlResult:
    """The result of `Ledger.sql()`: rows as tuples, Arrow-ready (integers int64, reals
    float64, text utf8, blobs binary)."""

    @property
    def columns(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: int, /) -> tuple[Any, ...]: ...
    def __iter__(self) -> Iterator[tuple[Any, ...]]: ...
    def rows(self) -> list[tuple[Any, ...]]: ...
    def to_pylist(self) -> list[dict[str, Any]]: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...
    def to_pandas(self) -> Any: ...
    def to_polars(self) -> Any: ...

class Head:
    """A chain position: ``str(head)`` is ``"SEQ:HEX"``; ``ledger_id`` names the ledger it was
    read from (``None`` when not known). Equality compares seq and hash."""

    def __init__(self, seq: int, hash: str, ledger_id: str | None = None) -> None: ...
    @property
    def ledger_id(self) -> str | None: ...
    @staticmethod
    def parse(text: str) -> Head: ...
    @property
    def seq(self) -> int: ...
    @property
    def hash(self) -> str: ...

class SigningKey:
    """An Ed25519 key that signs checkpoints. ``str(key)`` is its secret encoding
    ``PRIVATE+KEY+name+keyid+base64(0x01||seed)`` (Go's note package format)."""

    @staticmethod
    def generate(name: str) -> SigningKey:
        """A new key; ``name`` (no spaces or '+') names the signer, e.g. ``example.com/x``."""
    @staticmethod
    def from_str(text: str) -> SigningKey: ...
    @property
    def name(self) -> str: ...
    def verifying_key(self) -> VerifyingKey: ...

class VerifyingKey:
    """The public half of a `SigningKey`: ``name+keyid+base64(0x01||key)``."""

    @staticmethod
    def from_str(text: str) -> VerifyingKey: ...
    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> str:
        """8 hex digits."""

class Checkpoint:
    """A C2SP tlog-checkpoint of a ledger's Merkle tree in a C2SP signed note."""

    @staticmethod
    def parse(text: str) -> Checkpoint: ...
    @property
    def origin(self) -> str:
        """``statemeter/<ledger_id>`` for a ledger's checkpoints."""
    @property
    def size(self) -> int: ...
    @property
    def root_hash(self) -> str:
        """64 hex digits."""
    @property
    def text(self) -> str:
        """The signed note."""
    @property
    def signers(self) -> list[str]:
        """The key names of its signature lines (unchecked)."""
    def verify(self, key: VerifyingKey | str) -> bool:
        """Whether a signature of ``key`` verifies over it."""
    def cosign(self, key: SigningKey) -> Checkpoint:
        """This checkpoint with ``key``'s signature added (a witness)."""

class InclusionProof:
    """That a record is leaf ``leaf_index`` (seq − 1) of the tree of ``tree_size`` records."""

    def __init__(self, leaf_index: int, tree_size: int, hashes: Sequence[str | bytes]) -> None: ...
    @property
    def leaf_index(self) -> int: ...
    @property
    def tree_size(self) -> int: ...
    @property
    def hashes(self) -> list[str]:
        """The audit path, bottom up, hex."""
    def verify(self, record: str | bytes, checkpoint: Checkpoint) -> bool: ...

class ConsistencyProof:
    """That the tree of ``old_size`` records is a prefix of the tree of ``new_size``."""

    def __init__(self, old_size: int, new_size: int, hashes: Sequence[str | bytes]) -> None: ...
    @property
    def old_size(self) -> int: ...
    @property
    def new_size(self) -> int: ...
    @property
    def hashes(self) -> list[str]: ...
    def verify(self, old: Checkpoint, new: Checkpoint) -> bool: ...

class EvidenceResult:
    """The check of an evidence bundle (`verify_evidence`); truthy when it checks out."""

    @property
    def ok(self) -> bool: ...
    @property
    def problem(self) -> str | None:
        """What is wrong with the bundle as a whole (format, checkpoint, signature)."""
    @property
    def failed(self) -> list[str]:
        """The event ids whose items do not check out."""
    @property
    def items(self) -> list[dict[str, Any]]:
        """One dict per event: event_id, seq, ok, problem, and the event and classification
        the signed records hold (a version-2 record's context resolved), None when not ok."""
    @property
    def checkpoint(self) -> Checkpoint | None: ...
    @property
    def rows(self) -> Any:
        """The bundle's report rows, as given (not covered by the signature)."""
    @property
    def context(self) -> Any: ...
    def __bool__(self) -> bool: ...

def _verify_evidence(bundle: str, key: VerifyingKey | str) -> EvidenceResult: ...

class Verification:
    """Result of `Ledger.verify`; truthy when the ledger is intact."""

    @property
    def ok(self) -> bool: ...
    @property
    def events(self) -> int: ...
    @property
    def head(self) -> Head: ...
    @property
    def first_bad_seq(self) -> int | None: ...
    @property
    def problem(self) -> str | None:
        """Starts with edited, deleted, inserted, reordered, truncated, swapped or damaged."""
    def __bool__(self) -> bool: ...
    def _repr_html_(self) -> str: ...

class Ledger:
    """A ledger file or a meter's in-memory ledger."""

    @staticmethod
    def open(path: str | PathLike[str]) -> Ledger:
        """Open an existing ledger file. Raises `LedgerError`. A file this process may only
        read (permissions, read-only media) opens read-only: verify, events and reports work."""
    @property
    def path(self) -> str | None: ...
    @property
    def ledger_id(self) -> str | None:
        """The ledger's identity (a UUID); ``None`` for a ledger made before ledgers had one,
        opened read-only since (docs/ledger-format.md)."""
    def events(
        self, *, kind: Kind | None = None, session_id: str | None = None, tag: Tag | None = None
    ) -> EventTable: ...
    def head(self) -> Head: ...
    def verify(self, head: Head | str | None = None) -> Verification: ...
    def checkpoint(self, key: SigningKey) -> Checkpoint:
        """Signs a checkpoint of the Merkle tree at the current size; kept in the ledger."""
    def checkpoints(self) -> list[Checkpoint]: ...
    def record(self, event_id: str) -> str:
        """The record text of an event, exactly as stored and hashed."""
    def prove(self, event_id: str, checkpoint: Checkpoint) -> InclusionProof: ...
    def consistency(self, old: Checkpoint, new: Checkpoint) -> ConsistencyProof: ...
    def evidence(
        self,
        events: EventTable | Iterable[Event | str],
        checkpoint: Checkpoint,
        *,
        rows: Any = None,
        context: Any = None,
    ) -> str:
        """An evidence bundle (JSON text); ``statemeter.verify_evidence`` checks it."""
    def sql(
        self,
        query: str,
        params: Sequence[None | int | float | str | bytes]
        | Mapping[str, None | int | float | str | bytes]
        | None = None,
    ) -> SqlResult:
        """Read-only SQL through statemeter's own SQLite connection (never open a ledger with
        Python's sqlite3 in a process where statemeter has it open)."""
    def flush(self) -> None: ...
    def report(
        self,
        contract: Contract | str | PathLike[str],
        prices: PriceTable | str | PathLike[str] | None = None,
        *,
        by: str | Sequence[str] | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
    ) -> Report:
        """Compliance per interpretation, clause and group: covered and violating model calls,
        their tokens and exact cost. See docs/contracts.md."""
    def costs(
        self,
        prices: PriceTable | str | PathLike[str],
        *,
        by: str | Sequence[str] | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
    ) -> Report:
        """Costs of every billable event per group."""
    def scenario(
        self,
        name: str,
        *,
        contract: Contract | str | PathLike[str],
        select: Mapping[str, str | None | Sequence[str | None]] | None = None,
        venue: str | None = None,
        prices: PriceTable | str | PathLike[str] | None = None,
        baseline_prices: PriceTable | str | PathLike[str] | None = None,
        by: str | Sequence[str] | None = None,
        since: TimeArg = None,
        until: TimeArg = None,
    ) -> Scenario:
        """Re-venue and/or re-price the selected events; compliance and cost vs the baseline."""
    def sessions(self) -> SessionTable:
        """One row per session: identity, start/end, counts per kind, tokens, session_tag."""
    def export_parquet(
        self,
        dest: str | PathLike[str],
        partition_by: str | Sequence[str] | None = ...,
        *,
        filesystem: Any = None,
        include_records: bool = False,
        batch_events: int = ...,
        compression: str = ...,
    ) -> ExportResult:
        """Append the events not yet exported to a Hive-partitioned Parquet dataset that
        other ledgers may share: a local path or a URI (``s3://``, ``gs://``, ``file://``),
        optionally through a ``pyarrow.fs`` ``filesystem`` (``statemeter.parquet``; needs
        ``statemeter[analysis]``). See docs/scale.md."""
    def _export_chunk(
        self, after: int, limit: int, expect: str | None = None, records: bool = False
    ) -> tuple[ArrowBatches, int, str | None, tuple[list[str], list[bytes]] | None]: ...
    def __len__(self) -> int: ...
    def __enter__(self) -> Ledger: ...
    def __exit__(self, *args: object) -> bool: ...

TimeArg: TypeAlias = int | str | _dt.date | _dt.datetime | None

class Contract:
    """Clauses with effective periods, read under named interpretations (TOML)."""

    @staticmethod
    def from_toml(
        text: str,
        *,
        base: str | PathLike[str] | None = None,
        rulesets: Mapping[str, Ruleset] | None = None,
    ) -> Contract:
        """Parse contract TOML. An interpretation's ``ruleset = "path"`` is relative to
        ``base`` (default: the current directory); ``rulesets`` names `Ruleset` objects an
        interpretation may name besides ``"default"`` and ``"strict"``. Raises
        `ContractError` naming the line and field (raised from the `RulesetError` of a
        ruleset file that does not compile)."""
    @staticmethod
    def load(
        path: str | PathLike[str], *, rulesets: Mapping[str, Ruleset] | None = None
    ) -> Contract:
        """Read a contract TOML file; ruleset paths are relative to its directory. Raises
        `ContractError`."""
    @staticmethod
    def _unpickle(
        text: str,
        base: str | PathLike[str] | None,
        rulesets: Mapping[str, Ruleset] | None,
    ) -> Contract: ...
    @property
    def rulesets(self) -> dict[str, str | None]:
        """Each interpretation and the ruleset it reads the calls under, as written in the
        contract, or ``None``: the classification stored in the ledger."""
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def clauses(self) -> list[dict[str, Any]]:
        """Every clause version: id, text, providers, required_venues, effective_from,
        effective_until, interpretations (name -> level, tags, description, ruleset)."""
    @property
    def slots(self) -> list[tuple[str, str]]:
        """The (interpretation, clause) pairs of a report, in order."""

class PriceTable:
    """Exact prices (decimal strings) per model, runtime session-hour and stored GB-month."""

    @staticmethod
    def from_toml(text: str) -> PriceTable:
        """Parse price TOML. Raises `ContractError` naming the line and field."""
    @staticmethod
    def load(path: str | PathLike[str]) -> PriceTable:
        """Read a price TOML file. Raises `ContractError`."""
    @property
    def currency(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def as_of(self) -> str | None: ...
    @property
    def entries(self) -> list[dict[str, Any]]: ...
    def cost(self, event: Event | Mapping[str, Any]) -> int | None:
        """Nano-units for one model_call, or None when no price matches."""

class Report:
    """Rows of a report, a costs table or one side of a scenario (computed in Rust; integers
    exact, money in nano-units of ``currency``)."""

    @property
    def kind(self) -> Literal["report", "costs", "scenario", "scenario_costs", "explain"]: ...
    @property
    def columns(self) -> list[str]: ...
    @property
    def by(self) -> list[str]:
        """The group-by dimensions (columns after ``interpretation, clause`` in a report)."""
    @property
    def meta(self) -> dict[str, str | None]:
        """What the rows were computed from: contract id, currency, since, until, ..."""
    @property
    def rulesets(self) -> dict[str, str | None]:
        """Each interpretation (report and scenario compliance tables) and the ruleset it
        reads the calls under (``"strict"``, a file path, a name), or ``None``: as recorded.
        Empty for a costs table."""
    @property
    def currency(self) -> str | None: ...
    def rows(self) -> list[tuple[Any, ...]]:
        """One tuple per row, in column order."""
    def to_pylist(self) -> list[dict[str, Any]]:
        """One dict per row, keyed by column name."""
    @property
    def contract(self) -> Contract | None:
        """The contract a compliance report was computed from (``None`` for other tables)."""
    def explain(self, interpretation: str, clause: str) -> Report:
        """The violating calls of ``clause`` under ``interpretation`` in this report's window,
        grouped by agent, venue, model and the rule that tagged them (rule, signal,
        explanation), with sessions, exact cost and example session ids; a ``Report`` of kind
        ``"explain"`` (a contract report only)."""
    def violations(self, interpretation: str, clause: str) -> EventTable:
        """The events that violate ``clause`` under ``interpretation`` in the report's
        window (a contract report only)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    @overload
    def __getitem__(self, index: int, /) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice, /) -> list[dict[str, Any]]: ...
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """Arrow PyCapsule stream (built in Rust): labels ``dictionary<int32, utf8>``, counts
        and ``*_cost_nanos`` ``int64``."""
    def to_pandas(self) -> Any:
        """pandas DataFrame (``pip install statemeter[analysis]``): counts and money as
        nullable ``Int64``, labels as ``Categorical``."""
    def to_arrow(self) -> Any:
        """pyarrow Table (``pip install statemeter[analysis]``)."""
    def to_polars(self) -> Any:
        """polars DataFrame (``pip install statemeter[analysis]``)."""
    def to_csv(self, *, raw: bool = False) -> str:
        """CSV text: header = column names, None as an empty field; a text cell starting with
        ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'`` (OWASP, against
        formula injection) unless ``raw=True``; numbers are written as they are."""
    def plot(self, metric: str = "events", ax: Any = None) -> Any:
        """A bar chart (``statemeter[plot]``); returns the matplotlib ``Axes``."""
    def _repr_html_(self) -> str: ...

class Scenario:
    """A what-if scenario against the baseline: ``compliance`` and ``costs`` tables."""

    @property
    def name(self) -> str: ...
    @property
    def compliance(self) -> Report:
        """Per interpretation, clause and group: violating events and covered cost, baseline
        vs scenario, with deltas."""
    @property
    def costs(self) -> Report:
        """Every billable event per group, baseline vs scenario."""
    @property
    def selected_events(self) -> int:
        """Events the selection matched inside the window."""
    @property
    def moved_events(self) -> int:
        """Selected events whose venue the scenario changed."""
    def to_pylist(self) -> list[dict[str, Any]]:
        """The compliance rows."""
    def to_pandas(self) -> Any:
        """The compliance rows as a pandas DataFrame."""
    def plot(self, metric: str = "events", ax: Any = None) -> Any:
        """The compliance table's chart."""
    def _repr_html_(self) -> str: ...

class ToolSpan:
    """A running tool call (see `Session.tool`)."""

    @property
    def attrs(self) -> dict[str, Any]: ...
    @property
    def event(self) -> Event | None: ...
    def __enter__(self) -> ToolSpan: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        _exc: BaseException | None = None,
        _tb: TracebackType | None = None,
    ) -> bool: ...

class Session:
    """One agent session; events inherit its session_id, agent, tenant and venue.

    In the record methods an argument left as ``None`` takes its default: tokens and
    ``bytes`` 0, ``status`` ``"ok"``, ``tool_kind`` ``"function"``, ``effect`` ``"none"``,
    ``scope`` ``"session"``.
    """

    @property
    def session_id(self) -> str: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def tenant(self) -> str | None: ...
    @property
    def venue(self) -> str | None: ...
    @property
    def runtime(self) -> str | None: ...
    @property
    def runtime_session_id(self) -> str | None: ...
    @property
    def meter(self) -> Meter:
        """The `Meter` this session records into."""
    def model_call(
        self,
        *,
        provider: str,
        model: str,
        api: str,
        venue: str | None = None,
        request: Mapping[str, Any] | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int | None = None,
        duration_ns: int | None = None,
        status: Status | None = None,
        endpoint: str | None = None,
        attrs: Mapping[str, Any] | None = None,
        id: str | None = None,
        ts: int | None = None,
        parent_id: str | None = None,
    ) -> Event: ...
    def tool_call(
        self,
        tool: str,
        *,
        tool_kind: str | None = None,
        effect: Literal["none", "read", "write"] | None = None,
        mcp_session_id: str | None = None,
        duration_ns: int | None = None,
        status: Status | None = None,
        attrs: Mapping[str, Any] | None = None,
        id: str | None = None,
        ts: int | None = None,
        parent_id: str | None = None,
    ) -> Event: ...
    def state_op(
        self,
        op: Literal["read", "write", "delete"],
        *,
        store: str,
        holder: Literal["client", "provider"],
        scope: Literal["session", "user", "global"] | None = None,
        key: str | None = None,
        bytes: int | None = None,
        duration_ns: int | None = None,
        attrs: Mapping[str, Any] | None = None,
        id: str | None = None,
        ts: int | None = None,
        parent_id: str | None = None,
    ) -> Event: ...
    def tool(
        self,
        tool: str,
        *,
        tool_kind: str | None = None,
        effect: Literal["none", "read", "write"] | None = None,
        mcp_session_id: str | None = None,
        attrs: Mapping[str, Any] | None = None,
        parent_id: str | None = None,
    ) -> ToolSpan: ...
    def record(self, event: Mapping[str, Any]) -> Event: ...
    def start(self, *, ts: int | None = None, id: str | None = None) -> Event | None:
        """Record session_start (once); ``with`` does it. ``ts``/``id`` for replays."""
    def end(
        self, status: Status = "ok", *, ts: int | None = None, id: str | None = None
    ) -> Event | None:
        """Record session_end (once)."""
    def __enter__(self) -> Session: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        _exc: BaseException | None = None,
        _tb: TracebackType | None = None,
    ) -> bool: ...

class Meter:
    """Records events into a ledger (in memory, or a SQLite file).

    ``path=None`` keeps the ledger in memory. ``""`` and ``":memory:"`` (SQLite's own names
    for databases that are not the named file) raise ``ValidationError`` (field ``path``);
    a file named ``:memory:`` is reached as ``"./:memory:"``.
    """

    def __init__(
        self,
        path: str | PathLike[str] | None = None,
        *,
        ruleset: Ruleset | None = None,
        durability: Literal["batch", "sync"] = "batch",
        capacity: int = 16384,
    ) -> None: ...
    def session(
        self,
        agent: str | None = None,
        *,
        session_id: str | None = None,
        tenant: str | None = None,
        venue: str | None = None,
        runtime: str | None = None,
        runtime_session_id: str | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> Session: ...
    def record(self, event: Mapping[str, Any]) -> Event: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    def stats(self) -> dict[str, Any]:
        """accepted, written, duplicates, rejected, failed_commits, dropped, pending (ints),
        integration_errors (dict: source -> count) and spans: what became of the OpenTelemetry
        spans given to `MeterSpanProcessor` and `import_otlp_json`, ``{"seen": n, "recorded": n,
        "joined": n, "errors": n, "skipped": {reason: n}}`` with seen = recorded + joined +
        errors + the skipped (docs/integrations.md, "Nothing dropped silently")."""
    def _note_integration_error(self, source: str) -> None: ...
    def _note_spans(
        self, recorded: int, joined: int, errors: int, skipped: dict[str, int]
    ) -> None: ...
    def _key(self) -> int: ...
    def _record_all(self, events: Iterable[Mapping[str, Any]]) -> list[Event]:
        """Records raw events all or nothing, in one transaction (imports use it)."""
    @property
    def ledger(self) -> Ledger: ...
    @property
    def ruleset(self) -> Ruleset: ...
    @property
    def durability(self) -> Literal["batch", "sync"]: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Meter: ...
    def __exit__(self, *args: object) -> bool: ...

def venue_for_host(host: str, venues: Mapping[str, str] | None = None) -> tuple[str, str, str]:
    """The venue serving ``host`` (port allowed): ``(venue, rule, explain)``.

    ``venues`` maps host patterns (``"llm-proxy.internal"``, ``"*.gw.example.com"``) to venues and
    is checked before the built-in patterns. An unknown host gives ``"unknown"``, never a guess.
    """

def classify_request(
    method: str,
    url: str,
    headers: Mapping[str, str | bytes] | Iterable[tuple[str | bytes, str | bytes]] | None = None,
    body: bytes | bytearray | memoryview | str | None = None,
    *,
    ruleset: Ruleset | None = None,
    venues: Mapping[str, str] | None = None,
    providers: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], Classification]:
    """Classify a raw HTTP request as an SDK sends it.

    Returns ``(event, classification)``: ``event`` is the dict of the ``model_call`` the request
    amounts to (``kind``, ``provider``, ``model``, ``api``, ``venue``, ``endpoint``, ``request``,
    ``attrs``), or of a ``tool_call`` with ``tool_kind="mcp"`` for MCP traffic. Only
    non-content parameters are kept (docs/classification.md, "Request-level classification");
    credentials and the query string never are. ``attrs["venue_evidence"]`` says how the venue
    was decided (``venues`` maps hosts to venues, before the built-in patterns) and
    ``attrs["provider_evidence"]`` who serves the request: a provider's own endpoint, a
    third-party operator's host (Groq, OpenRouter, OCI, ...), ``providers`` (host pattern ->
    provider, before the built-in tables), or ``unknown`` on any other host, with the API shape
    read. ``attrs["http.request.method"]`` is the method. Raises ``ValidationError`` for a bad
    method, URL, headers, body type or mapping.
    """

def _describe_request(
    method: str,
    url: str,
    headers: Any = None,
    body: bytes | str | None = None,
    venues: Mapping[str, str] | None = None,
    api_family: str | None = None,
    providers: Mapping[str, str] | None = None,
) -> dict[str, Any]: ...
def _read_usage(body: bytes | str, content_type: str | None = None) -> dict[str, Any]: ...
def _flush_all() -> list[str]: ...

class _CapturedCalls:
    """Where one instrumented HTTP client's calls go: ``record`` hands one observed call over
    raw, and the meter's writer thread describes the request, reads the usage and records the
    event (the httpx capture uses it)."""

    def __init__(
        self,
        target: Session | Meter,
        source: str,
        venues: Mapping[str, str] | None = None,
        providers: Mapping[str, str] | None = None,
    ) -> None: ...
    def record(
        self,
        method: str,
        url: str,
        headers: Any,
        body: bytes | bytearray | memoryview | str | None,
        ts: int,
        duration_ns: int,
        http_status: int | None,
        outcome: str,
        content_type: str | None = None,
        response_body: bytes | bytearray | memoryview | str | None = None,
        usage_unread: str | None = None,
    ) -> None: ...

class _ObservedBody:
    """A response's byte stream as the httpx capture wraps it: each chunk is kept for usage as
    the caller reads it, and at the body's end (or when the caller closes it) the call is handed
    to the meter's writer thread (the capture subclasses it with the client's stream type; only
    ``_CaptureTransport`` makes instances, one per response)."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> Any: ...
    def close(self) -> None: ...

class _CaptureTransport:
    """A sync httpx client's transport as the httpx capture wraps it: each request is sent
    through ``inner`` and its response's byte stream wrapped in ``body_cls`` (an
    ``_ObservedBody`` subclass), or handed to ``capture`` (the capture subclasses it with the
    client's ``BaseTransport``)."""

    def __new__(
        cls,
        inner: Any,
        capture: Any,
        calls: _CapturedCalls | None,
        body_cls: type[_ObservedBody],
    ) -> Self: ...
    @property
    def inner(self) -> Any: ...
    @property
    def capture(self) -> Any: ...
    def handle_request(self, request: Any) -> Any: ...

class _StreamTap:
    """What the botocore capture keeps of an InvokeAgent response stream while the caller
    reads it: iterating it yields the chunks of the raw body it follows unchanged, keeping a
    copy of each and when it came; ``events`` yields the stream's parsed events unchanged,
    counting the trace events. ``_AgentTrace.read_stream`` and ``hand_over`` take what it
    kept."""

    def __init__(self) -> None: ...
    def follow(self, chunks: Iterable[Any]) -> Self: ...
    def __iter__(self) -> Self: ...
    def __next__(self) -> Any: ...
    def events(self, events: Iterable[Any], watch: Any) -> _TappedEvents: ...
    @property
    def traces(self) -> int: ...
    @property
    def size(self) -> int: ...
    def release(self) -> None: ...

class _TappedEvents:
    """The parsed events of a tapped stream (``_StreamTap.events``), unchanged."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> Any: ...

class _AgentTrace:
    """The inner steps of one Amazon Bedrock Agents InvokeAgent turn, read from the ``trace``
    events of its response stream (the botocore capture uses it)."""

    def __init__(self, venue: str | None = None) -> None: ...
    def observe(self, event: Any) -> bool: ...
    def read_stream(self, tap: _StreamTap) -> None: ...
    def hand_over(
        self,
        session: Any,
        event: Mapping[str, Any],
        tap: _StreamTap,
        outcome: str,
        source: str,
    ) -> bool: ...
    def finish(self, outcome: str) -> int: ...
    @property
    def unfinished(self) -> int: ...
    @property
    def errors(self) -> int: ...
    def record(self, session: Session, parent_id: str | None = None) -> list[Exception]: ...
    def steps(self) -> list[dict[str, Any]]: ...

class ArrowBatches:
    """Record batches handed back to Python through ``__arrow_c_stream__``."""

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object: ...

def _classify_batch(batch: Any, ruleset: Ruleset | None = None) -> ArrowBatches: ...
def _dataset_report(
    batches: Any,
    contract: Contract | str | PathLike[str],
    prices: PriceTable | str | PathLike[str] | None = None,
    by: str | Sequence[str] | None = None,
    since: TimeArg = None,
    until: TimeArg = None,
) -> tuple[list[str], list[list[Any]]]: ...
def _dataset_report_columns(
    contract: Contract | str | PathLike[str], by: str | Sequence[str] | None = None
) -> list[str]: ...
def _dataset_verify(batches: Any, head: Head | str | None = None) -> Verification: ...
def _otel_import(
    text: str, venues: Mapping[str, str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]: ...
def _otel_export(rows: list[dict[str, Any]]) -> dict[str, Any]: ...

class _SpanMapper:
    """Live span processor state (statemeter.integrations.otel)."""

    def __init__(self, venues: Mapping[str, str] | None = None) -> None: ...
    def start(self, trace_id: int) -> None: ...
    def end(
        self,
        trace_id: int,
        span_id: int,
        parent_id: int | None,
        name: str,
        kind: int,
        start_ns: int | None,
        end_ns: int | None,
        status_code: int,
        status_message: str | None,
        attributes: Any,
        service: str | None = None,
    ) -> list[dict[str, Any] | str | BaseException | tuple[dict[str, Any], str]]: ...
    def flush(self) -> list[dict[str, Any] | str | BaseException | tuple[dict[str, Any], str]]: ...
    def is_open(self, trace_id: int) -> bool: ...
    def attach(self, trace_id: int, span_id: int, event: Mapping[str, Any]) -> bool: ...
    def held(self) -> tuple[int, int]: ...
    def __len__(self) -> int: ...
