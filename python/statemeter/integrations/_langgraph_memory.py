"""LangGraph memory as ``state_op`` events: `MeteredCheckpointer` (short-term, per thread) and
`MeteredStore` (long-term). Re-exported by `statemeter.integrations.langchain`."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore, GetOp, ListNamespacesOp, PutOp, SearchOp

from statemeter._guard import note, shielded
from statemeter.integrations._sessions import SessionCache

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from statemeter import Meter

SOURCE = "langgraph"

# Bytes (de)serialized by the checkpointer during the current call; None outside a call.
_BYTES: ContextVar[list[int] | None] = ContextVar("statemeter_checkpoint_bytes", default=None)


class _CountingSerde:
    """The saver's own serializer, counting the bytes it writes and reads for the running call:
    sizes cost nothing extra, they are what the saver itself stores and loads."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # Bound once: these run for every value the saver stores or loads.
        self._dumps = inner.dumps_typed
        self._loads = inner.loads_typed

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        out = self._dumps(obj)
        acc = _BYTES.get()
        if acc is not None:
            acc[0] += len(out[1])
        return out  # type: ignore[no-any-return]

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        acc = _BYTES.get()
        if acc is not None:
            acc[0] += len(data[1])
        return self._loads(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_NONE: Mapping[str, Any] = {}


def _configurable(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (config.get("configurable") or _NONE) if config else _NONE


class _Recorder:
    """Shared by the checkpointer and the store: one ``state_op`` per operation."""

    def __init__(self, meter: Meter, store: str, holder: Any, scope: Any) -> None:
        self.meter = meter
        self.store = store
        self.holder = holder
        self.scope = scope
        self.sessions = SessionCache(meter)

    def record(
        self,
        op: Any,
        start: int,
        *,
        session_id: str | None,
        key: str | None,
        size: int,
        attrs: dict[str, Any],
    ) -> None:
        """Records one operation (callers catch and count failures)."""
        duration = time.time_ns() - start
        if session_id is None:
            self.meter.record(
                {
                    "kind": "state_op",
                    "op": op,
                    "store": self.store,
                    "holder": self.holder,
                    "scope": self.scope,
                    "key": key,
                    "bytes": size,
                    "ts": start,
                    "duration_ns": duration,
                    "attrs": attrs,
                }
            )
        else:
            self.sessions.get(session_id).state_op(
                op,
                store=self.store,
                holder=self.holder,
                scope=self.scope,
                key=key,
                bytes=size,
                ts=start,
                duration_ns=duration,
                attrs=attrs or None,
            )


class MeteredCheckpointer(BaseCheckpointSaver[Any]):
    """A `BaseCheckpointSaver` that records every read, write and delete of `inner`.

    ``graph = builder.compile(checkpointer=MeteredCheckpointer(InMemorySaver(), meter))``.
    ``get_tuple``/``list``/``get_delta_channel_history`` are reads, ``put`` and ``put_writes``
    writes, ``delete_thread``/``delete_for_runs``/``prune`` deletes (``copy_thread`` is a write
    to the target thread), sync and async alike. Each event is in the session of the graph's
    ``thread_id`` (``config["configurable"]["thread_id"]``), ``key`` is the checkpoint id,
    ``store`` the saver's class name and ``bytes`` what the saver serialized or deserialized for
    the call (counted through its own ``serde``, so measuring costs nothing; ``sizes=False``
    leaves the saver's serializer alone and records 0). ``holder="client"`` suits savers you
    run (memory, SQLite, Postgres); say ``"provider"`` for a managed service's.

    `inner` itself is not modified: the wrapper works on a shallow copy that shares its storage.
    """

    def __init__(
        self,
        inner: BaseCheckpointSaver[Any],
        meter: Meter,
        *,
        holder: str = "client",
        store: str | None = None,
        sizes: bool = True,
    ) -> None:
        super().__init__(serde=inner.serde)
        self.serde = inner.serde
        self.original = inner
        self.inner = copy.copy(inner)
        if sizes:
            self.inner.serde = _CountingSerde(inner.serde)
        self._holder, self._store, self._sizes = holder, store, sizes
        self._rec = _Recorder(meter, store or type(inner).__name__, holder, "session")

    def with_allowlist(self, extra_allowlist: Any) -> MeteredCheckpointer:
        """The same wrapper around ``inner.with_allowlist(...)`` (LangGraph calls it)."""
        clone = self.original.with_allowlist(extra_allowlist)
        if clone is self.original:
            return self
        return MeteredCheckpointer(
            clone, self._rec.meter, holder=self._holder, store=self._store, sizes=self._sizes
        )

    # -- helpers -------------------------------------------------------------------------------

    def _op(
        self,
        op: Literal["read", "write", "delete"],
        start: int,
        conf: Mapping[str, Any],
        key: str | None,
        size: int,
        attrs: dict[str, Any],
    ) -> None:
        try:
            ns = conf.get("checkpoint_ns")
            if ns:
                attrs["checkpoint_ns"] = ns
            thread = conf.get("thread_id")
            rec = self._rec
            if thread is None:
                rec.record(op, start, session_id=None, key=key, size=size, attrs=attrs)
                return
            # The usual case, without the layers of `_Recorder.record` (one per operation).
            rec.sessions.get(thread if type(thread) is str else str(thread)).state_op(
                op,
                store=rec.store,
                holder=rec.holder,
                scope=rec.scope,
                key=key,
                bytes=size,
                ts=start,
                duration_ns=time.time_ns() - start,
                attrs=attrs or None,
            )
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            note(self._rec.meter, SOURCE, exc)

    def _read(self, start: int, config: RunnableConfig | None, tup: Any, size: int) -> None:
        conf = _configurable(config)
        key = conf.get("checkpoint_id")
        if tup is not None:
            key = tup.config.get("configurable", {}).get("checkpoint_id", key)
        self._op("read", start, conf, key, size, {"found": tup is not None})

    def _put(self, start: int, config: RunnableConfig, out: Any, size: int, channels: int) -> None:
        conf = _configurable(out if type(out) is dict or isinstance(out, Mapping) else config)
        self._op("write", start, conf, conf.get("checkpoint_id"), size, {"channels": channels})

    def _put_writes(
        self, start: int, config: RunnableConfig, writes: Sequence[Any], task_id: str, size: int
    ) -> None:
        conf = _configurable(config)
        self._op(
            "write",
            start,
            conf,
            conf.get("checkpoint_id"),
            size,
            {"task_id": task_id, "writes": len(writes)},
        )

    # -- sync ----------------------------------------------------------------------------------

    @property
    def config_specs(self) -> list[Any]:
        return self.inner.config_specs

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    def get_tuple(self, config: RunnableConfig) -> Any:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            tup = self.inner.get_tuple(config)
        finally:
            _BYTES.reset(token)
        self._read(start, config, tup, acc[0])
        return tup

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[Any]:
        start, acc, n = time.time_ns(), [0], 0
        it = iter(self.inner.list(config, filter=filter, before=before, limit=limit))
        try:
            while True:
                token = _BYTES.set(acc)
                try:
                    tup = next(it)
                except StopIteration:
                    break
                finally:
                    _BYTES.reset(token)
                n += 1
                yield tup
        finally:
            self._op("read", start, _configurable(config), None, acc[0], {"listed": n})

    def put(
        self, config: RunnableConfig, checkpoint: Any, metadata: Any, new_versions: Any
    ) -> RunnableConfig:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            out = self.inner.put(config, checkpoint, metadata, new_versions)
        finally:
            _BYTES.reset(token)
        self._put(start, config, out, acc[0], len(new_versions))
        return out

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            self.inner.put_writes(config, writes, task_id, task_path)
        finally:
            _BYTES.reset(token)
        self._put_writes(start, config, writes, task_id, acc[0])

    def delete_thread(self, thread_id: str) -> None:
        start = time.time_ns()
        self.inner.delete_thread(thread_id)
        self._op("delete", start, {"thread_id": thread_id}, None, 0, {"op": "delete_thread"})

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        start = time.time_ns()
        self.inner.delete_for_runs(run_ids)
        self._op("delete", start, {}, None, 0, {"op": "delete_for_runs", "runs": len(run_ids)})

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        start = time.time_ns()
        self.inner.copy_thread(source_thread_id, target_thread_id)
        self._op(
            "write",
            start,
            {"thread_id": target_thread_id},
            None,
            0,
            {"op": "copy_thread", "source_thread_id": source_thread_id},
        )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        start = time.time_ns()
        self.inner.prune(thread_ids, strategy=strategy)
        for t in thread_ids:
            self._op(
                "delete", start, {"thread_id": t}, None, 0, {"op": "prune", "strategy": strategy}
            )

    def get_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Any:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            out = self.inner.get_delta_channel_history(config=config, channels=channels)
        finally:
            _BYTES.reset(token)
        self._op(
            "read",
            start,
            _configurable(config),
            None,
            acc[0],
            {"op": "delta_channel_history", "channels": len(channels)},
        )
        return out

    # -- async ---------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> Any:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            tup = await self.inner.aget_tuple(config)
        finally:
            _BYTES.reset(token)
        self._read(start, config, tup, acc[0])
        return tup

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Any]:
        start, acc, n = time.time_ns(), [0], 0
        it = self.inner.alist(config, filter=filter, before=before, limit=limit).__aiter__()
        try:
            while True:
                token = _BYTES.set(acc)
                try:
                    tup = await it.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    _BYTES.reset(token)
                n += 1
                yield tup
        finally:
            self._op("read", start, _configurable(config), None, acc[0], {"listed": n})

    async def aput(
        self, config: RunnableConfig, checkpoint: Any, metadata: Any, new_versions: Any
    ) -> RunnableConfig:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            out = await self.inner.aput(config, checkpoint, metadata, new_versions)
        finally:
            _BYTES.reset(token)
        self._put(start, config, out, acc[0], len(new_versions))
        return out

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            await self.inner.aput_writes(config, writes, task_id, task_path)
        finally:
            _BYTES.reset(token)
        self._put_writes(start, config, writes, task_id, acc[0])

    async def adelete_thread(self, thread_id: str) -> None:
        start = time.time_ns()
        await self.inner.adelete_thread(thread_id)
        self._op("delete", start, {"thread_id": thread_id}, None, 0, {"op": "delete_thread"})

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        start = time.time_ns()
        await self.inner.adelete_for_runs(run_ids)
        self._op("delete", start, {}, None, 0, {"op": "delete_for_runs", "runs": len(run_ids)})

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        start = time.time_ns()
        await self.inner.acopy_thread(source_thread_id, target_thread_id)
        self._op(
            "write",
            start,
            {"thread_id": target_thread_id},
            None,
            0,
            {"op": "copy_thread", "source_thread_id": source_thread_id},
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        start = time.time_ns()
        await self.inner.aprune(thread_ids, strategy=strategy)
        for t in thread_ids:
            self._op(
                "delete", start, {"thread_id": t}, None, 0, {"op": "prune", "strategy": strategy}
            )

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Any:
        start, acc = time.time_ns(), [0]
        token = _BYTES.set(acc)
        try:
            out = await self.inner.aget_delta_channel_history(config=config, channels=channels)
        finally:
            _BYTES.reset(token)
        self._op(
            "read",
            start,
            _configurable(config),
            None,
            acc[0],
            {"op": "delta_channel_history", "channels": len(channels)},
        )
        return out


def _current_thread() -> str | None:
    """The ``thread_id`` of the graph run this code is inside, if any."""
    try:
        from langgraph.config import get_config

        thread = _configurable(get_config()).get("thread_id")
        return str(thread) if thread is not None else None
    except Exception:  # noqa: BLE001 - outside a runnable context
        return None


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str, separators=(",", ":")).encode())


class MeteredStore(BaseStore):
    """A LangGraph `BaseStore` (long-term memory) that records every operation of `inner`.

    ``builder.compile(store=MeteredStore(InMemoryStore(), meter))``. Gets and searches are
    reads, puts writes, puts of ``None`` (``delete``) deletes; listing namespaces is a read.
    ``key`` is ``"namespace/.../key"``, ``bytes`` the JSON size of the values written or read,
    and the session is the ``thread_id`` of the graph run making the call (none outside one).
    ``scope`` defaults to ``"user"``: a store outlives threads.
    """

    def __init__(
        self,
        inner: BaseStore,
        meter: Meter,
        *,
        holder: str = "client",
        store: str | None = None,
        scope: str = "user",
    ) -> None:
        self.inner = inner
        self._rec = _Recorder(meter, store or type(inner).__name__, holder, scope)

    def _record(self, ops: Sequence[Any], results: Sequence[Any], start: int) -> None:
        thread = _current_thread()
        for op, res in zip(ops, results, strict=False):
            if isinstance(op, GetOp):
                size = _json_size(res.value) if res is not None else 0
                self._rec.record(
                    "read",
                    start,
                    session_id=thread,
                    key="/".join((*op.namespace, op.key)),
                    size=size,
                    attrs={"found": res is not None},
                )
            elif isinstance(op, SearchOp):
                size = sum(_json_size(item.value) for item in res or ())
                self._rec.record(
                    "read",
                    start,
                    session_id=thread,
                    key="/".join(op.namespace_prefix) or None,
                    size=size,
                    attrs={"op": "search", "results": len(res or ())},
                )
            elif isinstance(op, PutOp):
                key = "/".join((*op.namespace, op.key))
                if op.value is None:
                    self._rec.record("delete", start, session_id=thread, key=key, size=0, attrs={})
                else:
                    self._rec.record(
                        "write",
                        start,
                        session_id=thread,
                        key=key,
                        size=_json_size(op.value),
                        attrs={},
                    )
            elif isinstance(op, ListNamespacesOp):
                self._rec.record(
                    "read",
                    start,
                    session_id=thread,
                    key=None,
                    size=0,
                    attrs={"op": "list_namespaces", "results": len(res or ())},
                )

    def batch(self, ops: Iterable[Any]) -> list[Any]:
        ops = list(ops)
        start = time.time_ns()
        results = self.inner.batch(ops)
        with shielded(self._rec.meter, SOURCE):
            self._record(ops, results, start)
        return results

    async def abatch(self, ops: Iterable[Any]) -> list[Any]:
        ops = list(ops)
        start = time.time_ns()
        results = await self.inner.abatch(ops)
        with shielded(self._rec.meter, SOURCE):
            self._record(ops, results, start)
        return results
